namespace Bastion.Limits;

/// <summary>At most N units per window; windows are [k·W, (k+1)·W) counted from the Unix epoch in UTC.</summary>
/// <remarks>
/// The state remembers the window it counted in, and a new window starts only once the clock reaches the stored
/// end, so a clock that jumps backwards never reopens a window.
/// </remarks>
internal static class FixedWindowLimiter
{
    public static LimitDecision Decide(LimitPolicy policy, LimiterState state, long cost, long at, bool commit)
    {
        var limit = policy.Limit;
        var (start, end, used) = (state.WindowStartUtcTicks, state.WindowEndUtcTicks, state.Used);
        if (at >= end)
        {
            start = WindowStart(at, policy.Window.Ticks);
            end = start + policy.Window.Ticks;
            used = 0;
        }

        var resetAfter = TimeSpan.FromTicks(end - at);
        if (cost > limit)
        {
            return LimitDecision.TooLarge(limit - used, resetAfter);
        }

        if (used > limit - cost)
        {
            // The next window starts empty and the cost fits the limit, so it is granted at the boundary.
            return LimitDecision.Deny(limit - used, resetAfter, resetAfter);
        }

        if (commit)
        {
            state.WindowStartUtcTicks = start;
            state.WindowEndUtcTicks = end;
            state.Used = used + cost;
            state.LastSeenUtcTicks = at;
        }

        return LimitDecision.Grant(limit - used - cost, resetAfter);
    }

    public static void Refund(LimiterState state, long amount, long grantedAt, long at)
    {
        // Only the window the grant was counted in may be credited; a grant from an earlier window is already gone.
        if (grantedAt >= state.WindowStartUtcTicks && at < state.WindowEndUtcTicks)
        {
            state.Used -= Math.Min(amount, state.Used);
        }
    }

    private static long WindowStart(long at, long window)
    {
        var sinceEpoch = at - DateTimeOffset.UnixEpoch.UtcTicks;
        var index = sinceEpoch / window;
        if (sinceEpoch % window < 0)
        {
            index--;
        }

        return DateTimeOffset.UnixEpoch.UtcTicks + (index * window);
    }
}
