namespace Bastion.Limits;

/// <summary>
/// The limits that apply to one user: a role's policy, or a user's overrides of it. A null field is
/// "unlimited" in an effective policy and "keep the role's value" in an override.
/// </summary>
/// <param name="Requests">Requests per window.</param>
/// <param name="Tokens">Model tokens (prompt + <c>max_tokens</c>, reserved at admission) per window.</param>
/// <param name="Concurrency">Concurrent generations.</param>
/// <param name="DailyTokens">Tokens per UTC day.</param>
/// <param name="MonthlyTokens">Tokens per UTC calendar month.</param>
[GenerateSerializer, Immutable, Alias("bastion.user-limits")]
public sealed record UserLimits(
    [property: Id(0)] LimitPolicy? Requests,
    [property: Id(1)] LimitPolicy? Tokens,
    [property: Id(2)] int? Concurrency,
    [property: Id(3)] long? DailyTokens,
    [property: Id(4)] long? MonthlyTokens)
{
    /// <summary>No limits, or no overrides.</summary>
    public static UserLimits None { get; } = new(null, null, null, null, null);

    /// <summary>These limits with every field that <paramref name="overrides"/> sets replaced.</summary>
    public UserLimits With(UserLimits? overrides) => overrides is null
        ? this
        : new(
            overrides.Requests ?? Requests,
            overrides.Tokens ?? Tokens,
            overrides.Concurrency ?? Concurrency,
            overrides.DailyTokens ?? DailyTokens,
            overrides.MonthlyTokens ?? MonthlyTokens);
}
