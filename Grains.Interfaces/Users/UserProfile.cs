using Bastion.Generation;

namespace Bastion.Users;

/// <summary>What a user grain reports about itself.</summary>
/// <param name="Roles">Assigned roles.</param>
/// <param name="ApiKeys">The user's API keys (never their secrets or hashes).</param>
/// <param name="Usage">Tokens used so far.</param>
/// <param name="Requests">Completions admitted so far.</param>
/// <param name="Suspended">Whether the user is suspended.</param>
[GenerateSerializer, Immutable, Alias("bastion.user-profile")]
public sealed record UserProfile(
    [property: Id(0)] IReadOnlyList<string> Roles,
    [property: Id(1)] IReadOnlyList<ApiKeyInfo> ApiKeys,
    [property: Id(2)] TokenUsage Usage,
    [property: Id(3)] long Requests,
    [property: Id(4)] bool Suspended);

/// <summary>An API key's public metadata.</summary>
/// <param name="Id">The key id.</param>
/// <param name="Label">The label given at issue.</param>
/// <param name="CreatedAt">When it was issued.</param>
/// <param name="ExpiresAt">When it expires, if ever.</param>
/// <param name="Revoked">Whether it was revoked.</param>
[GenerateSerializer, Immutable, Alias("bastion.api-key-info")]
public sealed record ApiKeyInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] string Label,
    [property: Id(2)] DateTimeOffset CreatedAt,
    [property: Id(3)] DateTimeOffset? ExpiresAt,
    [property: Id(4)] bool Revoked);
