namespace Bastion.Limits;

/// <summary>
/// Token quotas per UTC calendar day or month. A reading earlier than the stored period start is read as that start,
/// so a clock that jumps backwards never reopens a spent period.
/// </summary>
public static class UsageQuota
{
    /// <summary>Consumes <paramref name="cost"/> units if the current period has room; the state changes only on a grant.</summary>
    public static LimitDecision TryConsume(QuotaPeriod period, long limit, QuotaState state, long cost, DateTimeOffset now) =>
        Decide(period, limit, state, cost, now, commit: true);

    /// <summary>What <see cref="TryConsume"/> would answer, without changing the state.</summary>
    public static LimitDecision Peek(QuotaPeriod period, long limit, QuotaState state, long cost, DateTimeOffset now) =>
        Decide(period, limit, state, cost, now, commit: false);

    /// <summary>
    /// Gives back unused units of a grant made at <paramref name="grantedAt"/>, only while its period is current:
    /// crediting a later period with an earlier period's units would let that period exceed the quota.
    /// </summary>
    public static void Refund(QuotaPeriod period, QuotaState state, long amount, DateTimeOffset grantedAt, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        var at = Effective(state, now);
        var start = PeriodStart(period, at);
        if (start == state.PeriodStart && grantedAt >= start && grantedAt < NextPeriodStart(period, start))
        {
            state.Used -= Math.Min(amount, state.Used);
        }
    }

    /// <summary>The start of the UTC period containing <paramref name="at"/>.</summary>
    public static DateTimeOffset PeriodStart(QuotaPeriod period, DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        return period switch
        {
            QuotaPeriod.Day => new DateTimeOffset(utc.Year, utc.Month, utc.Day, 0, 0, 0, TimeSpan.Zero),
            QuotaPeriod.Month => new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero),
            _ => throw new ArgumentOutOfRangeException(nameof(period), period, "Unknown quota period."),
        };
    }

    /// <summary>The start of the period after the one starting at <paramref name="start"/>.</summary>
    public static DateTimeOffset NextPeriodStart(QuotaPeriod period, DateTimeOffset start) =>
        period == QuotaPeriod.Day ? start.AddDays(1) : start.AddMonths(1);

    private static LimitDecision Decide(QuotaPeriod period, long limit, QuotaState state, long cost, DateTimeOffset now, bool commit)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        ArgumentOutOfRangeException.ThrowIfNegative(cost);

        var at = Effective(state, now);
        var start = PeriodStart(period, at);
        var used = start > state.PeriodStart ? 0 : state.Used;
        var resetAfter = NextPeriodStart(period, start) - at;
        if (cost > limit)
        {
            return LimitDecision.TooLarge(limit - used, resetAfter);
        }

        if (used > limit - cost)
        {
            return LimitDecision.Deny(limit - used, resetAfter, resetAfter);
        }

        if (commit)
        {
            state.PeriodStart = start;
            state.Used = used + cost;
        }

        return LimitDecision.Grant(limit - used - cost, resetAfter);
    }

    private static DateTimeOffset Effective(QuotaState state, DateTimeOffset now) =>
        now.UtcTicks < state.PeriodStart.UtcTicks ? state.PeriodStart.ToUniversalTime() : now.ToUniversalTime();
}
