namespace Bastion.Limits;

/// <summary>
/// An exact sliding log: a grant at instant a counts against every decision in [a, a + W), so no interval of length W
/// ever holds more than N units, and nothing is refused that would fit.
/// </summary>
/// <remarks>
/// The log holds only grants still inside the window (pruned on every grant); each holds at least one unit, so it
/// never has more than N entries, and grants at the same tick share one entry.
/// </remarks>
internal static class SlidingWindowLimiter
{
    public static LimitDecision Decide(LimitPolicy policy, LimiterState state, long cost, long at, bool commit)
    {
        var window = policy.Window.Ticks;
        var limit = policy.Limit;
        var grants = state.Grants;
        var (expired, expiredCost) = Expired(grants, at - window);
        var used = state.Used - expiredCost;
        if (cost > limit)
        {
            return LimitDecision.TooLarge(limit - used, ResetAfter(grants, expired, window, at));
        }

        if (used > limit - cost)
        {
            return LimitDecision.Deny(limit - used, RetryAfter(grants, expired, used + cost - limit, window, at), ResetAfter(grants, expired, window, at));
        }

        if (commit)
        {
            grants.RemoveRange(0, expired);
            if (cost > 0)
            {
                if (grants.Count > 0 && grants[^1].AtUtcTicks == at)
                {
                    grants[^1] = grants[^1] with { Cost = grants[^1].Cost + cost };
                }
                else
                {
                    grants.Add(new SlidingWindowGrant(at, cost));
                }
            }

            state.Used = used + cost;
            state.LastSeenUtcTicks = at;
            return LimitDecision.Grant(limit - state.Used, ResetAfter(grants, 0, window, at));
        }

        return LimitDecision.Grant(limit - used - cost, cost > 0 ? TimeSpan.FromTicks(window) : ResetAfter(grants, expired, window, at));
    }

    public static void Refund(LimitPolicy policy, LimiterState state, long amount, long grantedAt, long at)
    {
        // Credit the grant's own entry, or failing that an older one still in the window: an older entry leaves the
        // window no later than the grant's does, so the log never counts less than what was really used.
        var grants = state.Grants;
        var oldestCounted = at - policy.Window.Ticks;
        for (var i = grants.Count - 1; i >= 0 && amount > 0 && grants[i].AtUtcTicks > oldestCounted; i--)
        {
            if (grants[i].AtUtcTicks > grantedAt)
            {
                continue;
            }

            var credit = Math.Min(amount, grants[i].Cost);
            amount -= credit;
            state.Used -= credit;
            if (credit == grants[i].Cost)
            {
                grants.RemoveAt(i);
            }
            else
            {
                grants[i] = grants[i] with { Cost = grants[i].Cost - credit };
            }
        }
    }

    private static (int Count, long Cost) Expired(List<SlidingWindowGrant> grants, long oldestCounted)
    {
        var count = 0;
        var cost = 0L;
        while (count < grants.Count && grants[count].AtUtcTicks <= oldestCounted)
        {
            cost += grants[count].Cost;
            count++;
        }

        return (count, cost);
    }

    private static TimeSpan RetryAfter(List<SlidingWindowGrant> grants, int first, long excess, long window, long at)
    {
        // The cost fits once enough of the oldest grants have left the window.
        var freed = 0L;
        for (var i = first; i < grants.Count; i++)
        {
            freed += grants[i].Cost;
            if (freed >= excess)
            {
                return TimeSpan.FromTicks(grants[i].AtUtcTicks + window - at);
            }
        }

        // Only reachable if the log and Used disagree; refusing for a whole window is the safe answer.
        return TimeSpan.FromTicks(window);
    }

    private static TimeSpan ResetAfter(List<SlidingWindowGrant> grants, int first, long window, long at) =>
        grants.Count > first ? TimeSpan.FromTicks(grants[^1].AtUtcTicks + window - at) : TimeSpan.Zero;
}
