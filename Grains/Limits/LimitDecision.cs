namespace Bastion.Limits;

/// <summary>The answer to one request against one <see cref="LimitPolicy"/> or calendar quota.</summary>
/// <param name="Granted">True when the cost was (or, for a peek, would be) granted.</param>
/// <param name="Remaining">Whole units still available after this decision (never negative).</param>
/// <param name="RetryAfter">
/// The earliest time from now at which the same cost would be granted if nothing else happens; zero when
/// granted, <see cref="TimeSpan.MaxValue"/> when <see cref="NeverFits"/>.
/// </param>
/// <param name="ResetAfter">
/// Time until full capacity for the buckets and the sliding window; time until the next window (or quota
/// period) for the fixed window and the quotas.
/// </param>
/// <param name="NeverFits">The cost exceeds the policy's limit, so no amount of waiting will grant it.</param>
[GenerateSerializer, Immutable, Alias("bastion.limit-decision")]
public sealed record LimitDecision(
    [property: Id(0)] bool Granted,
    [property: Id(1)] long Remaining,
    [property: Id(2)] TimeSpan RetryAfter,
    [property: Id(3)] TimeSpan ResetAfter,
    [property: Id(4)] bool NeverFits)
{
    internal static LimitDecision Grant(long remaining, TimeSpan resetAfter) =>
        new(true, Math.Max(0, remaining), TimeSpan.Zero, resetAfter, false);

    internal static LimitDecision Deny(long remaining, TimeSpan retryAfter, TimeSpan resetAfter) =>
        new(false, Math.Max(0, remaining), retryAfter, resetAfter, false);

    internal static LimitDecision TooLarge(long remaining, TimeSpan resetAfter) =>
        new(false, Math.Max(0, remaining), TimeSpan.MaxValue, resetAfter, true);
}
