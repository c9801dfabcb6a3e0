using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// The source of every secret key the silo uses, one key (or set of versions) per purpose, so that no key
/// ever serves two: the pseudonym key, API-key hashing keys, API-key id tagging keys, cluster-assertion keys,
/// audit seal keys, JWT signing keys and key-encryption keys. Development reads a local keyring file; production reads Azure Key Vault.
/// </summary>
public interface IKeyProvider
{
    /// <summary>The long-lived key that turns user ids into pseudonyms. It is used for nothing else.</summary>
    ReadOnlySpan<byte> PseudonymKey { get; }

    /// <summary>The hashing key new API keys are hashed with.</summary>
    VersionedSecret CurrentApiKeyHashingKey { get; }

    /// <summary>Every enabled API-key hashing key: a key keeps working under the version it was hashed with.</summary>
    IReadOnlyList<VersionedSecret> ApiKeyHashingKeys { get; }

    /// <summary>The key that tags the ids of newly issued API keys (so the edge refuses invented ids without a lookup).</summary>
    VersionedSecret CurrentApiKeyIdKey { get; }

    /// <summary>Every enabled key-id tagging key: an id tagged under any of them is accepted.</summary>
    IReadOnlyList<VersionedSecret> ApiKeyIdKeys { get; }

    /// <summary>
    /// The key silos MAC their assertions with on calls to other silos (<see cref="Cluster.SiloAssertion"/>).
    /// Every silo holds it and no client does.
    /// </summary>
    VersionedSecret CurrentClusterAssertionKey { get; }

    /// <summary>The cluster-assertion key of a given version, or null when that version is unknown or disabled.</summary>
    VersionedSecret? FindClusterAssertionKey(int version);

    /// <summary>The key the audit trail's checkpoints (seals) are MACed with; its version is written in each seal.</summary>
    VersionedSecret CurrentAuditSealKey { get; }

    /// <summary>The audit seal key of a given version, or null when that version is unknown or disabled.</summary>
    VersionedSecret? FindAuditSealKey(int version);

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
