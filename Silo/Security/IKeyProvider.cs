using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// The source of every secret key the silo uses: the pseudonym key, API-key hashing keys and JWT
/// signing keys. Development reads a local keyring file; production reads Azure Key Vault.
/// </summary>
public interface IKeyProvider
{
    /// <summary>The long-lived key that turns user ids into pseudonyms.</summary>
    ReadOnlySpan<byte> PseudonymKey { get; }

    /// <summary>
    /// The key silos MAC their assertions with on calls to other silos (<see cref="Cluster.SiloAssertion"/>):
    /// derived from the pseudonym key with HKDF (<see cref="ClusterAssertionKeys"/>), so every silo holds it and no client does.
    /// </summary>
    ReadOnlySpan<byte> ClusterAssertionKey { get; }

    /// <summary>The hashing key new API keys are hashed with.</summary>
    VersionedSecret CurrentApiKeyHashingKey { get; }

    /// <summary>The hashing key of a given version, or null when that version is unknown.</summary>
    VersionedSecret? FindApiKeyHashingKey(int version);

    /// <summary>The key new access tokens are signed with (its <c>KeyId</c> is the JWT <c>kid</c>).</summary>
    SigningCredentials SigningCredentials { get; }

    /// <summary>Every public key an access token may be signed with.</summary>
    IReadOnlyList<SecurityKey> ValidationKeys { get; }

    /// <summary>The key-encryption key (KEK) new data keys are wrapped with (AES-256).</summary>
    VersionedSecret CurrentKek { get; }

    /// <summary>The KEK of a given version, or null when that version is unknown.</summary>
    VersionedSecret? FindKek(int version);

    /// <summary>Every KEK version this provider can unwrap with, ascending (retired ones excluded).</summary>
    IReadOnlyList<int> KekVersions { get; }

    /// <summary>
    /// Retires KEK <paramref name="version"/>: it no longer unwraps anything. The caller has checked
    /// that no data key is wrapped with it; the current version is refused.
    /// </summary>
    /// <exception cref="InvalidOperationException">Unknown, already retired, or the current version.</exception>
    void RetireKek(int version);
}

/// <summary>A secret with its version number.</summary>
/// <param name="Version">The version.</param>
/// <param name="Key">The key bytes.</param>
public sealed record VersionedSecret(int Version, byte[] Key)
{
    /// <summary>Never print key material.</summary>
    public override string ToString() => $"secret version {Version}";
}

/// <summary>Derives the cluster-assertion key from the pseudonym key (HKDF-SHA256 with its own label, so neither key reveals the other).</summary>
public static class ClusterAssertionKeys
{
    private static readonly byte[] Label = "bastion/cluster-assertion/v1"u8.ToArray();

    /// <summary>The 256-bit cluster-assertion key for <paramref name="pseudonymKey"/>.</summary>
    public static byte[] Derive(ReadOnlySpan<byte> pseudonymKey)
    {
        var key = new byte[32];
        System.Security.Cryptography.HKDF.DeriveKey(System.Security.Cryptography.HashAlgorithmName.SHA256, pseudonymKey, key, [], Label);
        return key;
    }
}
