namespace Bastion.Cluster;

/// <summary>A newly issued API key. The key itself is shown only here; Bastion keeps only a keyed hash of its secret.</summary>
/// <param name="KeyId">The key id (to revoke it later).</param>
/// <param name="ApiKey">The full <c>bst_</c> key.</param>
/// <param name="CreatedAt">When it was issued.</param>
/// <param name="ExpiresAt">When it expires, if ever.</param>
[GenerateSerializer, Immutable, Alias("bastion.issued-api-key")]
public sealed record IssuedApiKey(
    [property: Id(0)] string KeyId,
    [property: Id(1)] string ApiKey,
    [property: Id(2)] DateTimeOffset CreatedAt,
    [property: Id(3)] DateTimeOffset? ExpiresAt)
{
    /// <summary>Never print the key.</summary>
    public override string ToString() => $"IssuedApiKey {{ KeyId = {KeyId}, ApiKey = [redacted] }}";
}
