using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

public sealed class RateLimiterTests
{
    // Midnight UTC, so it starts a window for every window length that divides a day.
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan OneTick = TimeSpan.FromTicks(1);

    public static TheoryData<LimitAlgorithm> Algorithms => [.. Enum.GetValues<LimitAlgorithm>()];

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void TryAcquire_BurstOfLimit_GrantsLimitThenRefuses(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();

        for (var i = 1; i <= 10; i++)
        {
            var decision = RateLimiter.TryAcquire(policy, state, 1, T0);
            Assert.True(decision.Granted, $"request {i}");
            Assert.Equal(10 - i, decision.Remaining);
        }

        var refused = RateLimiter.TryAcquire(policy, state, 1, T0);
        Assert.False(refused.Granted);
        Assert.False(refused.NeverFits);
        Assert.Equal(0, refused.Remaining);
        Assert.True(refused.RetryAfter > TimeSpan.Zero);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void TryAcquire_CostAboveLimit_NeverFitsAndLeavesStateAlone(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();

        var tooLarge = RateLimiter.TryAcquire(policy, state, 11, T0);

        Assert.False(tooLarge.Granted);
        Assert.True(tooLarge.NeverFits);
        Assert.Equal(TimeSpan.MaxValue, tooLarge.RetryAfter);
        Assert.Equal(10, tooLarge.Remaining);
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0).Granted);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void TryAcquire_CostAboveOne_CountsEveryUnit(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();

        Assert.Equal(6, RateLimiter.TryAcquire(policy, state, 4, T0).Remaining);
        Assert.Equal(1, RateLimiter.TryAcquire(policy, state, 5, T0).Remaining);
        var refused = RateLimiter.TryAcquire(policy, state, 2, T0);
        Assert.False(refused.Granted);
        Assert.Equal(1, refused.Remaining);
        Assert.True(RateLimiter.TryAcquire(policy, state, 1, T0).Granted);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void TryAcquire_AfterExactlyRetryAfter_GrantsAndOneTickEarlierRefuses(LimitAlgorithm algorithm)
    {
        // 7 per minute: the buckets refill one unit every 8.57 s, so the answer is not a round number of ticks.
        var policy = new LimitPolicy(algorithm, 7, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 3, T0 + TimeSpan.FromSeconds(5)).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 2, T0 + TimeSpan.FromSeconds(20)).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 2, T0 + TimeSpan.FromSeconds(21)).Granted);
        var now = T0 + TimeSpan.FromSeconds(33);

        var refused = RateLimiter.TryAcquire(policy, state, 5, now);

        Assert.False(refused.Granted);
        Assert.False(RateLimiter.Peek(policy, state, 5, now + refused.RetryAfter - OneTick).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 5, now + refused.RetryAfter).Granted);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void TryAcquire_ClockJumpsBackwards_GrantsNothingExtra(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        var exhaustedAt = T0 + TimeSpan.FromSeconds(90);
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, exhaustedAt).Granted);
        var retryAfter = RateLimiter.Peek(policy, state, 1, exhaustedAt).RetryAfter;

        Assert.False(RateLimiter.TryAcquire(policy, state, 1, exhaustedAt - TimeSpan.FromSeconds(45)).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, exhaustedAt - TimeSpan.FromDays(1)).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, exhaustedAt + retryAfter - OneTick).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 1, exhaustedAt + retryAfter).Granted);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void TryAcquire_ClockJumpsFarForward_RefillsToLimitOnly(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0).Granted);
        var later = T0 + TimeSpan.FromDays(400);

        Assert.Equal(10, RateLimiter.Peek(policy, state, 0, later).Remaining);
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, later).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, later).Granted);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Peek_Repeated_LeavesStateAlone(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 3, TimeSpan.FromMinutes(1));
        var state = new LimiterState();

        for (var i = 0; i < 5; i++)
        {
            Assert.True(RateLimiter.Peek(policy, state, 3, T0).Granted);
        }

        Assert.True(RateLimiter.TryAcquire(policy, state, 3, T0).Granted);
    }

    [Fact]
    public void TryAcquire_TokenBucketEmpty_RefillsOneTokenAtExactlyItsInterval()
    {
        var policy = new LimitPolicy(LimitAlgorithm.TokenBucket, 10, TimeSpan.FromSeconds(10));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0).Granted);

        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(1) - OneTick).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(1)).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(1)).Granted);
    }

    [Fact]
    public void TryAcquire_TokenBucketIdleForOneWindow_IsFullAgainButNoFuller()
    {
        var policy = new LimitPolicy(LimitAlgorithm.TokenBucket, 10, TimeSpan.FromSeconds(10));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0).Granted);

        var almost = RateLimiter.Peek(policy, state, 10, T0 + TimeSpan.FromSeconds(10) - OneTick);
        Assert.False(almost.Granted);
        Assert.Equal(9, almost.Remaining);
        Assert.Equal(OneTick, almost.RetryAfter);
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0 + TimeSpan.FromSeconds(10)).Granted);
        Assert.Equal(TimeSpan.FromSeconds(10), RateLimiter.Peek(policy, state, 1, T0 + TimeSpan.FromSeconds(10)).ResetAfter);
    }

    [Fact]
    public void TryAcquire_TokenBucketFractionalRate_NeverRoundsUpATokenEarly()
    {
        // 3 per 10 s: one token per 3.333… s. Two requests a tick apart around the 3.333 s mark.
        var policy = new LimitPolicy(LimitAlgorithm.TokenBucket, 3, TimeSpan.FromSeconds(10));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 3, T0).Granted);

        var refused = RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromTicks(33_333_333));
        Assert.False(refused.Granted);
        Assert.Equal(OneTick, refused.RetryAfter);
        Assert.True(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromTicks(33_333_334)).Granted);
    }

    [Fact]
    public void TryAcquire_LeakyBucketFull_DrainsAtLimitPerWindow()
    {
        var policy = new LimitPolicy(LimitAlgorithm.LeakyBucket, 10, TimeSpan.FromSeconds(10));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0).Granted);
        var halfway = T0 + TimeSpan.FromSeconds(5);

        Assert.False(RateLimiter.TryAcquire(policy, state, 6, halfway).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 5, halfway - OneTick).Granted);
        var granted = RateLimiter.TryAcquire(policy, state, 5, halfway);
        Assert.True(granted.Granted);
        Assert.Equal(0, granted.Remaining);
        Assert.Equal(TimeSpan.FromSeconds(10), granted.ResetAfter);
    }

    [Fact]
    public void TryAcquire_FixedWindowAtBoundary_StartsAFreshWindow()
    {
        var policy = new LimitPolicy(LimitAlgorithm.FixedWindow, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        var granted = RateLimiter.TryAcquire(policy, state, 10, T0 + TimeSpan.FromSeconds(30));
        Assert.Equal(TimeSpan.FromSeconds(30), granted.ResetAfter);

        var justBefore = RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromMinutes(1) - OneTick);
        Assert.False(justBefore.Granted);
        Assert.Equal(OneTick, justBefore.RetryAfter);
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0 + TimeSpan.FromMinutes(1)).Granted);
    }

    [Fact]
    public void TryAcquire_FixedWindow_IsAlignedToTheUnixEpoch()
    {
        var policy = new LimitPolicy(LimitAlgorithm.FixedWindow, 1, TimeSpan.FromSeconds(7));
        var state = new LimiterState();
        var now = DateTimeOffset.UnixEpoch + TimeSpan.FromSeconds(7 * 1_000_000 + 3);

        var decision = RateLimiter.TryAcquire(policy, state, 1, now);

        Assert.Equal(TimeSpan.FromSeconds(4), decision.ResetAfter);
        Assert.Equal(DateTimeOffset.UnixEpoch.UtcTicks + TimeSpan.FromSeconds(7_000_000).Ticks, state.WindowStartUtcTicks);
    }

    [Fact]
    public void TryAcquire_FixedWindowClockBackIntoPreviousWindow_DoesNotReopenIt()
    {
        var policy = new LimitPolicy(LimitAlgorithm.FixedWindow, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0 + TimeSpan.FromSeconds(61)).Granted);

        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(30)).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(120) - OneTick).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(120)).Granted);
    }

    [Fact]
    public void TryAcquire_SlidingWindow_FreesEachGrantExactlyOneWindowLater()
    {
        var policy = new LimitPolicy(LimitAlgorithm.SlidingWindow, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 4, T0).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 6, T0 + TimeSpan.FromSeconds(30)).Granted);

        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromMinutes(1) - OneTick).Granted);
        var atBoundary = T0 + TimeSpan.FromMinutes(1);
        Assert.False(RateLimiter.TryAcquire(policy, state, 5, atBoundary).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 4, atBoundary).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(90) - OneTick).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 6, T0 + TimeSpan.FromSeconds(90)).Granted);
    }

    [Fact]
    public void TryAcquire_SlidingWindowAcrossAFixedBoundary_StillAllowsOnlyLimit()
    {
        // The case a fixed window lets through twice: a burst at the end of one window and the start of the next.
        var policy = new LimitPolicy(LimitAlgorithm.SlidingWindow, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0 + TimeSpan.FromSeconds(59)).Granted);

        var refused = RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(61));

        Assert.False(refused.Granted);
        Assert.Equal(TimeSpan.FromSeconds(58), refused.RetryAfter);
    }

    [Fact]
    public void TryAcquire_SlidingWindowManyGrants_KeepsOnlyGrantsInsideTheWindow()
    {
        var policy = new LimitPolicy(LimitAlgorithm.SlidingWindow, 5, TimeSpan.FromSeconds(10));
        var state = new LimiterState();

        for (var second = 0; second < 1000; second += 2)
        {
            Assert.True(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(second)).Granted);
        }

        Assert.Equal(5, state.Grants.Count);
        Assert.Equal(5, state.Used);
    }

    [Fact]
    public void Refund_TokenBucket_NeverRaisesAboveCapacity()
    {
        var policy = new LimitPolicy(LimitAlgorithm.TokenBucket, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 8, T0).Granted);

        RateLimiter.Refund(policy, state, 1000, T0, T0);

        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0).Granted);
    }

    [Theory]
    [InlineData(LimitAlgorithm.TokenBucket)]
    [InlineData(LimitAlgorithm.LeakyBucket)]
    [InlineData(LimitAlgorithm.FixedWindow)]
    [InlineData(LimitAlgorithm.SlidingWindow)]
    public void Refund_UnusedReservation_CanBeGrantedAgain(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 100, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 100, T0).Granted);

        RateLimiter.Refund(policy, state, 30, T0, T0 + TimeSpan.FromSeconds(1));

        Assert.True(RateLimiter.TryAcquire(policy, state, 30, T0 + TimeSpan.FromSeconds(1)).Granted);
        Assert.False(RateLimiter.Peek(policy, state, 1, T0 + TimeSpan.FromSeconds(1)).Granted);
    }

    [Theory]
    [InlineData(LimitAlgorithm.TokenBucket)]
    [InlineData(LimitAlgorithm.LeakyBucket)]
    public void Refund_BucketGrantAlreadyDrained_CreditsNothing(LimitAlgorithm algorithm)
    {
        var policy = new LimitPolicy(algorithm, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0).Granted);
        var oneWindowLater = T0 + TimeSpan.FromMinutes(1);
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, oneWindowLater).Granted);

        // The first grant's units have all drained; crediting them would hand out the second grant's units again.
        RateLimiter.Refund(policy, state, 10, T0, oneWindowLater);

        Assert.False(RateLimiter.TryAcquire(policy, state, 1, oneWindowLater).Granted);
    }

    [Fact]
    public void Refund_FixedWindowGrantFromEarlierWindow_IsIgnored()
    {
        var policy = new LimitPolicy(LimitAlgorithm.FixedWindow, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0 + TimeSpan.FromSeconds(50)).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 10, T0 + TimeSpan.FromSeconds(70)).Granted);

        RateLimiter.Refund(policy, state, 10, T0 + TimeSpan.FromSeconds(50), T0 + TimeSpan.FromSeconds(75));

        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(75)).Granted);
    }

    [Fact]
    public void Refund_SlidingWindow_CreditsOnlyTheGrantNotLaterOnes()
    {
        var policy = new LimitPolicy(LimitAlgorithm.SlidingWindow, 10, TimeSpan.FromMinutes(1));
        var state = new LimiterState();
        Assert.True(RateLimiter.TryAcquire(policy, state, 2, T0).Granted);
        Assert.True(RateLimiter.TryAcquire(policy, state, 8, T0 + TimeSpan.FromSeconds(30)).Granted);

        // The first grant asks for more back than it took: only its 2 units may be credited, not the later 8.
        RateLimiter.Refund(policy, state, 5, T0, T0 + TimeSpan.FromSeconds(40));

        Assert.True(RateLimiter.TryAcquire(policy, state, 2, T0 + TimeSpan.FromSeconds(40)).Granted);
        Assert.False(RateLimiter.TryAcquire(policy, state, 1, T0 + TimeSpan.FromSeconds(40)).Granted);
    }

    [Fact]
    public void TryAcquire_InvalidPolicy_Throws()
    {
        var state = new LimiterState();

        Assert.Throws<ArgumentOutOfRangeException>(() =>
            RateLimiter.TryAcquire(new LimitPolicy(LimitAlgorithm.TokenBucket, 0, TimeSpan.FromMinutes(1)), state, 1, T0));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            RateLimiter.TryAcquire(new LimitPolicy(LimitAlgorithm.SlidingWindow, 1, TimeSpan.Zero), state, 1, T0));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            RateLimiter.TryAcquire(new LimitPolicy(LimitAlgorithm.FixedWindow, 1, TimeSpan.FromMinutes(1)), state, -1, T0));
    }
}
