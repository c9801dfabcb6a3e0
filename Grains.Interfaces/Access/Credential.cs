namespace Bastion.Access;

/// <summary>How a caller proved who they are, as far as the API silo could check at the edge.</summary>
public enum CredentialKind
{
    /// <summary>A <c>bst_</c> API key sent directly as the bearer token.</summary>
    ApiKey = 1,

    /// <summary>A Bastion-issued JWT obtained by exchanging an API key.</summary>
    AccessToken = 2,

    /// <summary>A JWT from a configured external issuer, mapped to a provisioned user.</summary>
    ExternalToken = 3,

    /// <summary>
    /// A service token from the client library, whose signature a silo's call filter has verified;
    /// the key id is the service's name. Revoking the user's tokens refuses those issued before.
    /// </summary>
    ServiceToken = 4,
}

/// <summary>
/// The part of a credential that only the user grain can judge: whether the key still exists, is
/// unexpired and unrevoked, and (for API keys) whether the keyed hash of the secret matches.
/// </summary>
/// <param name="Kind">The credential kind.</param>
/// <param name="KeyId">The API key id (for an access token: the key it was exchanged for; for an external token: the issuer's name).</param>
/// <param name="SecretHashes">For API keys, the keyed hashes of the presented secret, one per enabled hashing-key version; empty otherwise.</param>
/// <param name="RevocationGeneration">For access tokens, the user's revocation generation at issue time.</param>
/// <param name="IssuedAt">For external and service tokens, when the issuer issued it (tokens issued before a revocation are refused).</param>
/// <param name="ClientNetwork">
/// A keyed hash, per user, of the network the HTTP request came from (IPv4 /24, IPv6 /48), for anomaly detection; null
/// when unknown. Never an address.
/// </param>
/// <remarks>
/// Ids 2 and 3 (one hash and its version) are retired: a hash made only under the current version locked out every key
/// after a rotation. The hashes are an array, not an interface: silo assertions digest the arguments as serialized, and a
/// compiler-made collection behind <c>IReadOnlyList</c> comes back from the wire as another type, with other bytes.
/// </remarks>
[GenerateSerializer, Immutable, Alias("bastion.credential")]
public sealed record Credential(
    [property: Id(0)] CredentialKind Kind,
    [property: Id(1)] string KeyId,
    [property: Id(6)] SecretHash[] SecretHashes,
    [property: Id(4)] long RevocationGeneration,
    [property: Id(5)] DateTimeOffset? IssuedAt = null,
    [property: Id(7)] string? ClientNetwork = null)
{
    /// <summary>Never print hashes.</summary>
    public override string ToString() => $"{Kind} credential for key {KeyId}";
}

/// <summary>A keyed hash of an API key's secret and the version of the hashing key that made it.</summary>
/// <param name="Version">The hashing key version.</param>
/// <param name="Hash">HMAC-SHA-256 of the key id and secret under that version.</param>
[GenerateSerializer, Immutable, Alias("bastion.secret-hash")]
public sealed record SecretHash([property: Id(0)] int Version, [property: Id(1)] byte[] Hash)
{
    /// <summary>Never print hashes.</summary>
    public override string ToString() => $"secret hash (version {Version})";
}
