using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

/// <summary>Daily and monthly token quotas on UTC calendar periods; every expected figure is worked out by hand.</summary>
public sealed class UsageQuotaTests
{
    // 2026-03-14 18:00 UTC: six hours left in the day, 17 days and six hours left in March.
    private static readonly DateTimeOffset Now = new(2026, 3, 14, 18, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Grants_UpToTheLimitExactly_ThenDenies()
    {
        var state = new QuotaState();

        Assert.Equal(new LimitDecision(true, 40, TimeSpan.Zero, TimeSpan.FromHours(6), false), UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 60, Now));
        Assert.Equal(new LimitDecision(true, 0, TimeSpan.Zero, TimeSpan.FromHours(6), false), UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 40, Now));
        Assert.Equal(new LimitDecision(false, 0, TimeSpan.FromHours(6), TimeSpan.FromHours(6), false), UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 1, Now));
        Assert.Equal(100, state.Used);
        Assert.Equal(new DateTimeOffset(2026, 3, 14, 0, 0, 0, TimeSpan.Zero), state.PeriodStart);
    }

    [Fact]
    public void ADenial_ChangesNothing_AndAZeroCostAlwaysFits()
    {
        var state = new QuotaState { PeriodStart = new(2026, 3, 14, 0, 0, 0, TimeSpan.Zero), Used = 99 };

        Assert.False(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 2, Now).Granted);
        Assert.Equal(99, state.Used);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 0, Now).Granted);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 1, Now).Granted);
        Assert.Equal(100, state.Used);
    }

    [Fact]
    public void ACostLargerThanTheLimit_NeverFits()
    {
        var decision = UsageQuota.TryConsume(QuotaPeriod.Month, 100, new QuotaState(), 101, Now);

        Assert.Equal(new LimitDecision(false, 100, TimeSpan.MaxValue, new TimeSpan(17, 6, 0, 0), true), decision);
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Month, 100, new QuotaState(), 100, Now).Granted);
    }

    [Fact]
    public void Peek_AnswersLikeTryConsume_WithoutSpending()
    {
        var state = new QuotaState();

        Assert.Equal(UsageQuota.TryConsume(QuotaPeriod.Day, 100, new QuotaState(), 30, Now), UsageQuota.Peek(QuotaPeriod.Day, 100, state, 30, Now));
        Assert.Equal(0, state.Used);
        Assert.Equal(default, state.PeriodStart);
    }

    [Theory]
    [InlineData(QuotaPeriod.Day, "2026-03-15T00:00:00Z", true)] // midnight: a new day
    [InlineData(QuotaPeriod.Day, "2026-03-14T23:59:59Z", false)]
    [InlineData(QuotaPeriod.Month, "2026-04-01T00:00:00Z", true)]
    [InlineData(QuotaPeriod.Month, "2026-03-31T23:59:59Z", false)]
    public void TheNextPeriod_StartsAfresh(QuotaPeriod period, string at, bool fresh)
    {
        var state = new QuotaState();
        Assert.True(UsageQuota.TryConsume(period, 100, state, 100, Now).Granted);

        Assert.Equal(fresh, UsageQuota.TryConsume(period, 100, state, 100, DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture)).Granted);
    }

    [Fact]
    public void AClockThatGoesBack_ReopensNothing()
    {
        var state = new QuotaState();
        Assert.True(UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 100, Now.AddDays(1)).Granted);

        var decision = UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 1, Now);

        Assert.False(decision.Granted);
        Assert.Equal(TimeSpan.FromDays(1), decision.ResetAfter); // read as the start of the stored day
    }

    [Fact]
    public void PeriodsAreUtc_WhateverTheOffsetOfTheReading()
    {
        // 01:00 on the 15th at +03:00 is 22:00 UTC on the 14th.
        var reading = new DateTimeOffset(2026, 3, 15, 1, 0, 0, TimeSpan.FromHours(3));

        Assert.Equal(new DateTimeOffset(2026, 3, 14, 0, 0, 0, TimeSpan.Zero), UsageQuota.PeriodStart(QuotaPeriod.Day, reading));
        Assert.Equal(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero), UsageQuota.PeriodStart(QuotaPeriod.Month, reading));
        Assert.Equal(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero), UsageQuota.NextPeriodStart(QuotaPeriod.Month, new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero)));
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.PeriodStart((QuotaPeriod)7, reading));
    }

    [Fact]
    public void Refund_CreditsOnlyTheCurrentPeriodsGrants_AndNeverBelowZero()
    {
        var state = new QuotaState();
        UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 80, Now);

        UsageQuota.Refund(QuotaPeriod.Day, state, 30, Now, Now.AddHours(1));
        Assert.Equal(50, state.Used);

        UsageQuota.Refund(QuotaPeriod.Day, state, 10, Now.AddDays(-1), Now); // granted yesterday
        Assert.Equal(50, state.Used);

        UsageQuota.Refund(QuotaPeriod.Day, state, 10, Now.AddDays(1), Now); // "granted" tomorrow
        Assert.Equal(50, state.Used);

        UsageQuota.Refund(QuotaPeriod.Day, state, 500, Now, Now);
        Assert.Equal(0, state.Used);

        UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 10, Now);
        UsageQuota.Refund(QuotaPeriod.Day, state, 10, Now, Now.AddDays(1)); // settled after the day ended
        Assert.Equal(10, state.Used);
    }

    [Fact]
    public void Refund_AtThePeriodsFirstInstant_Counts()
    {
        var midnight = new DateTimeOffset(2026, 3, 14, 0, 0, 0, TimeSpan.Zero);
        var state = new QuotaState();
        UsageQuota.TryConsume(QuotaPeriod.Day, 100, state, 10, midnight);

        UsageQuota.Refund(QuotaPeriod.Day, state, 4, midnight, midnight);

        Assert.Equal(6, state.Used);
    }

    [Fact]
    public void NegativeInputs_AreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.TryConsume(QuotaPeriod.Day, -1, new QuotaState(), 0, Now));
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.TryConsume(QuotaPeriod.Day, 1, new QuotaState(), -1, Now));
        Assert.Throws<ArgumentOutOfRangeException>(() => UsageQuota.Refund(QuotaPeriod.Day, new QuotaState(), -1, Now, Now));
        Assert.Throws<ArgumentNullException>(() => UsageQuota.Refund(QuotaPeriod.Day, null!, 1, Now, Now));
        Assert.Throws<ArgumentNullException>(() => UsageQuota.Peek(QuotaPeriod.Day, 1, null!, 1, Now));
    }
}
