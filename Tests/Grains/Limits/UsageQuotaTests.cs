using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

public sealed class UsageQuotaTests
{
    private static readonly TimeSpan OneTick = TimeSpan.FromTicks(1);

    private static DateTimeOffset Utc(int year, int month, int day, int hour = 0, int minute = 0) =>
        new(year, month, day, hour, minute, 0, TimeSpan.Zero);

    [Fact]
    public void TryConsume_DayQuotaSpent_RefusesUntilUtcMidnight()
    {
        var state = new QuotaState();
        var now = Utc(2026, 6, 10, 18);
        Assert.Equal(400, UsageQuota.TryConsume(QuotaPeriod.Day, 1000, state, 600, now).Remaining);
        Assert.Equal(0, UsageQuota.TryConsume(QuotaPeriod.Day, 1000, state, 400, now).Remaining);

        var refused = UsageQuota.TryConsume(QuotaPeriod.Day, 1000, state, 1, now);

        Assert.False(refused.Granted);
        Assert.False(refused.NeverFits);
        Assert.Equal(TimeSpan.FromHours(6), refused.RetryAfter);
        Assert.False(UsageQuota.TryConsume(QuotaPeriod.Day, 1000, state, 1, Utc(2026, 6, 11) - OneTick).Granted);
        Assert.Equal(0, UsageQuota.TryConsume(QuotaPeriod.Day, 1000, state, 1000, Utc(2026, 6, 11)).Remaining);
    }

    [Fact]
    public void TryConsume_ClockWithLocalOffset_ResetsAtUtcMidnightNotLocal()
    {
        var state = new QuotaState();
        var plusTwo = TimeSpan.FromHours(2);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 10, state, 10, new DateTimeOffset(2026, 6, 11, 1, 0, 0, plusTwo)).Granted);

        // 01:30 local on the 11th is still 23:30 UTC on the 10th.
        var refused = UsageQuota.TryConsume(QuotaPeriod.Day, 10, state, 1, new DateTimeOffset(2026, 6, 11, 1, 30, 0, plusTwo));

        Assert.False(refused.Granted);
        Assert.Equal(TimeSpan.FromMinutes(30), refused.RetryAfter);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 10, state, 1, new DateTimeOffset(2026, 6, 11, 2, 0, 0, plusTwo)).Granted);
    }

    [Theory]
    [InlineData(2026, 1, 31)]
    [InlineData(2026, 4, 30)]
    [InlineData(2027, 2, 28)]
    [InlineData(2028, 2, 29)]
    [InlineData(2026, 12, 31)]
    public void TryConsume_MonthQuotaAtMonthEnd_ResetsOnTheFirstAtMidnightUtc(int year, int month, int lastDay)
    {
        var state = new QuotaState();
        var lastEvening = Utc(year, month, lastDay, 22);
        var nextMonth = Utc(year, month, 1).AddMonths(1);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Month, 50, state, 50, Utc(year, month, 1)).Granted);

        var refused = UsageQuota.TryConsume(QuotaPeriod.Month, 50, state, 1, lastEvening);

        Assert.False(refused.Granted);
        Assert.Equal(TimeSpan.FromHours(2), refused.RetryAfter);
        Assert.False(UsageQuota.TryConsume(QuotaPeriod.Month, 50, state, 1, nextMonth - OneTick).Granted);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Month, 50, state, 50, nextMonth).Granted);
        Assert.Equal(nextMonth, state.PeriodStart);
    }

    [Theory]
    [InlineData(2028, 29)]
    [InlineData(2027, 28)]
    [InlineData(2100, 28)]
    public void TryConsume_FebruaryQuotaSpent_RetryAfterCountsTheLeapDay(int year, int daysInFebruary)
    {
        var state = new QuotaState();
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Month, 5, state, 5, Utc(year, 2, 1)).Granted);

        var onTheFirst = UsageQuota.TryConsume(QuotaPeriod.Month, 5, state, 1, Utc(year, 2, 1));
        var onThe28thAtNoon = UsageQuota.TryConsume(QuotaPeriod.Month, 5, state, 1, Utc(year, 2, 28, 12));

        Assert.Equal(TimeSpan.FromDays(daysInFebruary), onTheFirst.RetryAfter);
        Assert.Equal(TimeSpan.FromDays(daysInFebruary - 27.5), onThe28thAtNoon.RetryAfter);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Month, 5, state, 5, Utc(year, 3, 1)).Granted);
    }

    [Fact]
    public void TryConsume_DecemberToJanuary_StartsTheNewYearFresh()
    {
        var state = new QuotaState();
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 3, state, 3, Utc(2026, 12, 31, 23, 59)).Granted);

        var refused = UsageQuota.TryConsume(QuotaPeriod.Day, 3, state, 1, Utc(2026, 12, 31, 23, 59));

        Assert.Equal(TimeSpan.FromMinutes(1), refused.RetryAfter);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 3, state, 3, Utc(2027, 1, 1)).Granted);
        Assert.Equal(Utc(2027, 1, 1), state.PeriodStart);
    }

    [Theory]
    [InlineData(QuotaPeriod.Day)]
    [InlineData(QuotaPeriod.Month)]
    public void TryConsume_ClockJumpsBackIntoPreviousPeriod_GrantsNothingExtra(QuotaPeriod period)
    {
        var state = new QuotaState();
        var now = Utc(2026, 3, 1, 0, 5);
        Assert.True(UsageQuota.TryConsume(period, 10, state, 10, now).Granted);

        Assert.False(UsageQuota.TryConsume(period, 10, state, 1, now - TimeSpan.FromMinutes(10)).Granted);
        Assert.False(UsageQuota.TryConsume(period, 10, state, 1, now - TimeSpan.FromDays(40)).Granted);
        Assert.Equal(Utc(2026, 3, 1), state.PeriodStart);
    }

    [Fact]
    public void TryConsume_CostAboveQuota_NeverFits()
    {
        var state = new QuotaState();

        var decision = UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 101, Utc(2026, 6, 10));

        Assert.True(decision.NeverFits);
        Assert.False(decision.Granted);
        Assert.Equal(TimeSpan.MaxValue, decision.RetryAfter);
        Assert.Equal(100, decision.Remaining);
    }

    [Fact]
    public void Refund_SamePeriod_CreditsUnusedTokensButNeverBelowZero()
    {
        var state = new QuotaState();
        var now = Utc(2026, 6, 10, 12);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 80, now).Granted);

        UsageQuota.Refund(QuotaPeriod.Day, state, 30, now, now + TimeSpan.FromMinutes(1));
        Assert.Equal(50, state.Used);
        UsageQuota.Refund(QuotaPeriod.Day, state, 500, now, now + TimeSpan.FromMinutes(2));

        Assert.Equal(0, state.Used);
    }

    [Fact]
    public void Refund_GrantFromPreviousDay_IsIgnored()
    {
        var state = new QuotaState();
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 100, Utc(2026, 6, 10, 23, 50)).Granted);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 100, Utc(2026, 6, 11, 0, 10)).Granted);

        UsageQuota.Refund(QuotaPeriod.Day, state, 100, Utc(2026, 6, 10, 23, 50), Utc(2026, 6, 11, 0, 15));

        Assert.False(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 1, Utc(2026, 6, 11, 0, 20)).Granted);
    }

    [Fact]
    public void Peek_SpentQuota_LeavesStateAlone()
    {
        var state = new QuotaState();
        var now = Utc(2026, 6, 10);

        Assert.True(UsageQuota.Peek(QuotaPeriod.Month, 10, state, 10, now).Granted);
        Assert.Equal(0, state.Used);
        Assert.Equal(10, UsageQuota.Peek(QuotaPeriod.Month, 10, state, 0, now).Remaining);
    }

    [Fact]
    public void Refund_OnlyForGrantsInsideTheCurrentPeriod_FromItsFirstInstantToBeforeTheNext()
    {
        var midnight = Utc(2026, 3, 14);
        var state = new QuotaState();
        UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 10, midnight);

        UsageQuota.Refund(QuotaPeriod.Day, state, 4, midnight, midnight); // granted at the period's first instant
        Assert.Equal(6, state.Used);

        UsageQuota.Refund(QuotaPeriod.Day, state, 4, Utc(2026, 3, 15), midnight); // "granted" at the next period's start
        Assert.Equal(6, state.Used);
    }

    [Fact]
    public void PeriodStart_IsUtc_AndAnUnknownPeriodIsRefused()
    {
        // 01:00 on the 15th at +03:00 is 22:00 UTC on the 14th.
        var reading = new DateTimeOffset(2026, 3, 15, 1, 0, 0, TimeSpan.FromHours(3));

        Assert.Equal(Utc(2026, 3, 14), UsageQuota.PeriodStart(QuotaPeriod.Day, reading));
        Assert.Equal(Utc(2026, 3, 1), UsageQuota.PeriodStart(QuotaPeriod.Month, reading));
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.PeriodStart((QuotaPeriod)7, reading));
    }

    [Fact]
    public void NegativeInputs_AreRefused()
    {
        var now = Utc(2026, 3, 14);
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.TryConsume(QuotaPeriod.Day, -1, new QuotaState(), 0, now));
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.TryConsume(QuotaPeriod.Day, 1, new QuotaState(), -1, now));
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.Refund(QuotaPeriod.Day, new QuotaState(), -1, now, now));
        Assert.Throws<ArgumentNullException>(() => UsageQuota.Refund(QuotaPeriod.Day, null!, 1, now, now));
        Assert.Throws<ArgumentNullException>(() => UsageQuota.Peek(QuotaPeriod.Day, 1, null!, 1, now));
    }
}
