using Bastion.Limits;

namespace Bastion.Anomaly;

/// <summary>
/// The limits of a throttled user: requests, tokens and concurrency scaled down (never below 1), quotas as they are.
/// The algorithm and window stay, so the counters the user has already run up keep counting against the lower limit.
/// </summary>
public static class AnomalyThrottle
{
    /// <summary>The effective limits at <paramref name="now"/>: <paramref name="limits"/> scaled down while a throttle runs.</summary>
    public static UserLimits Apply(UserLimits limits, AnomalyState state, DateTimeOffset now) =>
        state.ThrottledUntil is { } until && until > now
            ? limits with
            {
                Requests = Scale(limits.Requests, state.ThrottleFactor),
                Tokens = Scale(limits.Tokens, state.ThrottleFactor),
                Concurrency = limits.Concurrency is { } concurrency ? Math.Max(1, (int)(concurrency * state.ThrottleFactor)) : null,
            }
            : limits;

    /// <summary>Starts a throttle, or extends a running one, until <paramref name="until"/>.</summary>
    public static void Start(AnomalyState state, double factor, DateTimeOffset until)
    {
        state.ThrottleFactor = Math.Clamp(factor, 0, 1);
        if (state.ThrottledUntil is not { } running || running < until)
        {
            state.ThrottledUntil = until;
        }
    }

    private static LimitPolicy? Scale(LimitPolicy? policy, double factor) =>
        policy is null ? null : policy with { Limit = Math.Max(1, (long)(policy.Limit * factor)) };
}
