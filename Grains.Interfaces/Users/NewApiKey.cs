namespace Bastion.Users;

/// <summary>An API key to store: its id and the keyed hash of its secret, never the secret.</summary>
/// <param name="KeyId">The public key id that routes to the owner.</param>
/// <param name="SecretHash">HMAC of the secret under the API-key hashing key.</param>
/// <param name="HashKeyVersion">The hashing key version used.</param>
/// <param name="Label">A caller-chosen label.</param>
/// <param name="CreatedAt">When the key was issued.</param>
/// <param name="ExpiresAt">When the key stops working, if ever.</param>
[GenerateSerializer, Immutable, Alias("bastion.new-api-key")]
public sealed record NewApiKey(
    [property: Id(0)] string KeyId,
    [property: Id(1)] byte[] SecretHash,
    [property: Id(2)] int HashKeyVersion,
    [property: Id(3)] string Label,
    [property: Id(4)] DateTimeOffset CreatedAt,
    [property: Id(5)] DateTimeOffset? ExpiresAt)
{
    /// <summary>Never print hashes.</summary>
    public override string ToString() => $"API key {KeyId}";
}
