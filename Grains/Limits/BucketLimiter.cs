namespace Bastion.Limits;

/// <summary>
/// The token bucket and the leaky bucket used as a meter are the same arithmetic: a token bucket holding T tokens is a
/// meter at level N − T. Storing the level means a new, all-zero state is a full bucket.
/// </summary>
/// <remarks>
/// The level is kept in fixed point with 1/Window.Ticks of a unit as its quantum: draining for d ticks removes
/// exactly d·N quanta, so there is no rounding at all and no sequence of requests can slip in an extra unit.
/// Products go through <see cref="Int128"/>; N·Window.Ticks overflows a long for large limits.
/// </remarks>
internal static class BucketLimiter
{
    public static LimitDecision Decide(LimitPolicy policy, LimiterState state, long cost, long at, bool commit)
    {
        var window = policy.Window.Ticks;
        var limit = policy.Limit;
        var level = LevelAt(state, window, limit, at);
        var capacity = (Int128)limit * window;
        if (cost > limit)
        {
            return LimitDecision.TooLarge(Remaining(level, window, limit), TimeToDrain(level, limit));
        }

        var after = level + (Int128)cost * window;
        if (after > capacity)
        {
            // Draining d ticks frees d·N quanta; the smallest d that brings the level down far enough.
            var retry = CeilingDivide(after - capacity, limit);
            return LimitDecision.Deny(Remaining(level, window, limit), Ticks(retry), TimeToDrain(level, limit));
        }

        if (commit)
        {
            Store(state, after, window, at);
        }

        return LimitDecision.Grant(Remaining(after, window, limit), TimeToDrain(after, limit));
    }

    public static void Refund(LimitPolicy policy, LimiterState state, long amount, long grantedAt, long at)
    {
        // Crediting the full amount would be wrong once the grant has drained away: the credit would come out of
        // later grants' units (grant N, drain for a window, grant N again, refund the first N: 2N in one instant).
        // Whatever of this grant is still in the level has drained by at most N per window since it was made, so
        // the amount less that drain is always safe to credit; a prompt settlement gets (nearly) all of it back.
        var window = policy.Window.Ticks;
        var credit = ((Int128)amount * window) - ((Int128)(at - grantedAt) * policy.Limit);
        if (credit <= 0)
        {
            return;
        }

        var level = LevelAt(state, window, policy.Limit, at) - credit;
        Store(state, Int128.Max(level, 0), window, at);
    }

    private static Int128 LevelAt(LimiterState state, long window, long limit, long at)
    {
        // A fraction stored under a longer window than the current policy's is clamped rather than trusted.
        var fraction = Math.Clamp(state.LevelFraction, 0, window - 1);
        var stored = (Int128)Math.Max(state.Level, 0) * window + fraction;
        var drained = (Int128)(at - state.LastSeenUtcTicks) * limit;
        return Int128.Max(stored - drained, 0);
    }

    private static void Store(LimiterState state, Int128 level, long window, long at)
    {
        var (whole, fraction) = Int128.DivRem(level, window);
        state.Level = (long)whole;
        state.LevelFraction = (long)fraction;
        state.LastSeenUtcTicks = at;
    }

    private static long Remaining(Int128 level, long window, long limit) =>
        limit - (long)CeilingDivide(level, window);

    private static TimeSpan TimeToDrain(Int128 level, long limit) => Ticks(CeilingDivide(level, limit));

    private static Int128 CeilingDivide(Int128 value, long divisor) => (value + divisor - 1) / divisor;

    private static TimeSpan Ticks(Int128 ticks) => TimeSpan.FromTicks((long)Int128.Min(ticks, long.MaxValue));
}
