namespace Bastion.Limits;

/// <summary>
/// Decides requests against a <see cref="LimitPolicy"/> and its persisted <see cref="LimiterState"/>. Written here
/// rather than taken from System.Threading.RateLimiting because the state must persist in grain storage and time
/// must come from the grain's injected clock; every call is a pure function of its arguments.
/// </summary>
/// <remarks>
/// A clock reading earlier than <see cref="LimiterState.LastSeenUtcTicks"/> is read as that instant, so a clock that
/// jumps backwards refills nothing and resets no window. The caller persists the state after a grant and counts the
/// grant only once that write has succeeded.
/// </remarks>
public static class RateLimiter
{
    /// <summary>Grants <paramref name="cost"/> units if the policy allows it now; the state changes only on a grant.</summary>
    public static LimitDecision TryAcquire(LimitPolicy policy, LimiterState state, long cost, DateTimeOffset now) =>
        Decide(policy, state, cost, now, commit: true);

    /// <summary>What <see cref="TryAcquire"/> would answer, without changing the state (for RateLimit headers).</summary>
    public static LimitDecision Peek(LimitPolicy policy, LimiterState state, long cost, DateTimeOffset now) =>
        Decide(policy, state, cost, now, commit: false);

    /// <summary>
    /// Gives back <paramref name="amount"/> units of a grant made at <paramref name="grantedAt"/> that went unused
    /// (a token reservation larger than the generation). A refund is credited only while the grant still counts:
    /// the buckets credit the amount less what could have drained since <paramref name="grantedAt"/> (all of it
    /// when settled at once, nothing a full window later) and never go above capacity; the fixed window credits
    /// only the window the grant was counted in; the sliding window credits the grant's own log entry. So the
    /// units really used never exceed N, whatever the timing of refunds.
    /// </summary>
    public static void Refund(LimitPolicy policy, LimiterState state, long amount, DateTimeOffset grantedAt, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(state);
        policy.Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        if (amount == 0)
        {
            return;
        }

        var at = EffectiveTicks(state, now);
        // A grant cannot postdate the present; clamping keeps a skewed grantedAt from crediting a later grant.
        var grantedAtTicks = Math.Min(grantedAt.UtcTicks, at);
        switch (policy.Algorithm)
        {
            case LimitAlgorithm.TokenBucket:
            case LimitAlgorithm.LeakyBucket:
                BucketLimiter.Refund(policy, state, amount, grantedAtTicks, at);
                break;
            case LimitAlgorithm.FixedWindow:
                FixedWindowLimiter.Refund(state, amount, grantedAtTicks, at);
                break;
            case LimitAlgorithm.SlidingWindow:
                SlidingWindowLimiter.Refund(policy, state, amount, grantedAtTicks, at);
                break;
        }
    }

    private static LimitDecision Decide(LimitPolicy policy, LimiterState state, long cost, DateTimeOffset now, bool commit)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(state);
        policy.Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(cost);

        var at = EffectiveTicks(state, now);
        return policy.Algorithm switch
        {
            LimitAlgorithm.TokenBucket or LimitAlgorithm.LeakyBucket => BucketLimiter.Decide(policy, state, cost, at, commit),
            LimitAlgorithm.FixedWindow => FixedWindowLimiter.Decide(policy, state, cost, at, commit),
            _ => SlidingWindowLimiter.Decide(policy, state, cost, at, commit),
        };
    }

    private static long EffectiveTicks(LimiterState state, DateTimeOffset now) => Math.Max(now.UtcTicks, state.LastSeenUtcTicks);
}
