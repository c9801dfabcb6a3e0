namespace Bastion.Limits;

/// <summary>Which limit a <see cref="LimitStatus"/> describes.</summary>
public enum LimitKind
{
    /// <summary>Requests per window.</summary>
    Requests = 0,

    /// <summary>Model tokens per window.</summary>
    Tokens = 1,

    /// <summary>Concurrent generations.</summary>
    Concurrency = 2,

    /// <summary>Tokens per UTC day.</summary>
    DailyTokens = 3,

    /// <summary>Tokens per UTC calendar month.</summary>
    MonthlyTokens = 4,
}

/// <summary>Where a user stands against one limit: what the HTTP layer turns into <c>RateLimit</c> and <c>Retry-After</c>.</summary>
/// <param name="Kind">The limit.</param>
/// <param name="Limit">Its size.</param>
/// <param name="Window">Its window (null for concurrency).</param>
/// <param name="Remaining">Units left now.</param>
/// <param name="ResetAfter">Time until the limit is fully available again.</param>
/// <param name="RetryAfter">Time until the refused request would fit (zero when granted).</param>
/// <param name="NeverFits">The request is larger than the limit itself, so waiting will not help.</param>
[GenerateSerializer, Immutable, Alias("bastion.limit-status")]
public sealed record LimitStatus(
    [property: Id(0)] LimitKind Kind,
    [property: Id(1)] long Limit,
    [property: Id(2)] TimeSpan? Window,
    [property: Id(3)] long Remaining,
    [property: Id(4)] TimeSpan ResetAfter,
    [property: Id(5)] TimeSpan RetryAfter,
    [property: Id(6)] bool NeverFits)
{
    /// <summary>True for the calendar quotas, which get their own problem type.</summary>
    public bool IsQuota => Kind is LimitKind.DailyTokens or LimitKind.MonthlyTokens;
}
