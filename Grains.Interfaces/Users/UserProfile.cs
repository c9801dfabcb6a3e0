using Bastion.Generation;

namespace Bastion.Users;

/// <summary>What a user grain reports about itself.</summary>
/// <param name="Roles">Assigned roles.</param>
/// <param name="ApiKeyIds">Ids of the user's API keys.</param>
/// <param name="Usage">Tokens used so far.</param>
/// <param name="Requests">Completions served so far.</param>
[GenerateSerializer, Immutable, Alias("bastion.user-profile")]
public sealed record UserProfile(
    [property: Id(0)] IReadOnlyList<string> Roles,
    [property: Id(1)] IReadOnlyList<string> ApiKeyIds,
    [property: Id(2)] TokenUsage Usage,
    [property: Id(3)] long Requests);
