using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

public sealed class AdmissionTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);
    private static readonly LimitPolicy TenPerHour = new(LimitAlgorithm.SlidingWindow, 10, TimeSpan.FromHours(1));

    [Fact]
    public void TryAdmit_OneLimitRefuses_ChargesNoOther()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(TenPerHour, new LimitPolicy(LimitAlgorithm.FixedWindow, 100, TimeSpan.FromHours(1)), 5, 1000, 1000);
        Assert.True(Admission.TryAdmit(state, limits, Guid.NewGuid(), 90, Start, Lease).Admitted);

        var (admitted, status) = Admission.TryAdmit(state, limits, Guid.NewGuid(), 20, Start, Lease);

        Assert.False(admitted);
        Assert.Equal(LimitKind.Tokens, status!.Kind);
        Assert.Equal(9, RateLimiter.Peek(TenPerHour, state.Requests, 0, Start).Remaining);
        Assert.Equal(90, state.DailyTokens.Used);
        Assert.Single(state.Concurrency.Leases);
        Assert.Single(state.Reservations);
    }

    [Fact]
    public void TryAdmit_Granted_ReportsTheRequestLimitStanding()
    {
        var (admitted, status) = Admission.TryAdmit(new AdmissionState(), new UserLimits(TenPerHour, null, null, null, null), Guid.NewGuid(), 1, Start, Lease);

        Assert.True(admitted);
        Assert.Equal(new LimitStatus(LimitKind.Requests, 10, TimeSpan.FromHours(1), 9, TimeSpan.FromHours(1), TimeSpan.Zero, false), status);
    }

    [Fact]
    public void Settle_RefundsUnusedTokensAndFreesTheSlot()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, new LimitPolicy(LimitAlgorithm.FixedWindow, 200, TimeSpan.FromHours(1)), 1, 100, 100);
        var first = Guid.NewGuid();
        Assert.True(Admission.TryAdmit(state, limits, first, 100, Start, Lease).Admitted);
        Assert.Equal(LimitKind.Concurrency, Admission.TryAdmit(state, limits, Guid.NewGuid(), 1, Start, Lease).Status!.Kind);

        Admission.Settle(state, limits, first, 30, Start.AddSeconds(5));

        Assert.Empty(state.Reservations);
        Assert.Equal(30, state.DailyTokens.Used);
        Assert.Equal(30, state.MonthlyTokens.Used);
        Assert.True(Admission.TryAdmit(state, limits, Guid.NewGuid(), 70, Start.AddSeconds(6), Lease).Admitted);
    }

    [Fact]
    public void Settle_Twice_RefundsOnce()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, null, null, 100, null);
        var id = Guid.NewGuid();
        Admission.TryAdmit(state, limits, id, 50, Start, Lease);

        Assert.True(Admission.Settle(state, limits, id, 10, Start));
        Assert.False(Admission.Settle(state, limits, id, 10, Start));

        Assert.Equal(10, state.DailyTokens.Used);
    }

    [Fact]
    public void Settle_RemembersTheLastSettlements_SoARepeatAfterOthersIsStillRecognised()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, null, null, 10_000, null);
        var ids = Enumerable.Range(0, Admission.SettledMemory + 1).Select(_ => Guid.NewGuid()).ToList();
        foreach (var id in ids)
        {
            Admission.TryAdmit(state, limits, id, 50, Start, Lease);
            Assert.True(Admission.Settle(state, limits, id, 10, Start));
        }

        Assert.False(Admission.Settle(state, limits, ids[^Admission.SettledMemory], 10, Start));
        Assert.Equal(Admission.SettledMemory, state.Settled.Count);
        Assert.Equal((Admission.SettledMemory + 1) * 10, state.DailyTokens.Used);
    }

    [Fact]
    public void TryAdmit_LeaseOfAnUnsettledGenerationExpires_FreesItsSlotWithoutRefund()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, null, 1, 100, null);
        var lost = Guid.NewGuid();
        Admission.TryAdmit(state, limits, lost, 40, Start, Lease);
        Assert.False(Admission.TryAdmit(state, limits, Guid.NewGuid(), 1, Start + Lease - TimeSpan.FromTicks(1), Lease).Admitted);

        Assert.True(Admission.TryAdmit(state, limits, Guid.NewGuid(), 1, Start + Lease, Lease).Admitted);
        Admission.Settle(state, limits, lost, 0, Start + Lease);
        Assert.Equal(41, state.DailyTokens.Used);
        Assert.DoesNotContain(lost, Admission.Open(state));
    }

    [Fact]
    public void TryAdmit_AlgorithmChanged_StartsCountingAfresh()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(TenPerHour, null, null, null, null);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Admission.TryAdmit(state, limits, Guid.NewGuid(), 1, Start, Lease).Admitted);
        }

        Assert.False(Admission.TryAdmit(state, limits with { Requests = TenPerHour with { Limit = 10 } }, Guid.NewGuid(), 1, Start, Lease).Admitted);
        Assert.True(Admission.TryAdmit(state, limits with { Requests = TenPerHour with { Algorithm = LimitAlgorithm.FixedWindow } }, Guid.NewGuid(), 1, Start, Lease).Admitted);
    }

    [Fact]
    public void TryAdmit_MonthlyQuotaExhausted_ReportsAQuotaUntilTheNextMonth()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, null, null, null, 10);
        Admission.TryAdmit(state, limits, Guid.NewGuid(), 10, Start, Lease);

        var (admitted, status) = Admission.TryAdmit(state, limits, Guid.NewGuid(), 1, Start, Lease);

        Assert.False(admitted);
        Assert.True(status!.IsQuota);
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero) - Start, status.RetryAfter);
    }

    [Fact]
    public void Renew_RunningGeneration_KeepsItsSlotPastTheFirstLease_AndItsReservation()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, null, 1, 1000, null);
        var running = Guid.NewGuid();
        Assert.True(Admission.TryAdmit(state, limits, running, 100, Start, Lease).Admitted);

        // Renewed every third of a lease, as a running generation does: 30 minutes later it still holds the one slot.
        for (var minute = 3; minute <= 30; minute += 3)
        {
            Assert.True(Admission.Renew(state, running, Start.AddMinutes(minute), Lease));
        }

        Assert.Equal(LimitKind.Concurrency, Admission.TryAdmit(state, limits, Guid.NewGuid(), 1, Start.AddMinutes(30), Lease).Status!.Kind);
        Assert.True(Admission.Settle(state, limits, running, 40, Start.AddMinutes(31)));
        Assert.Equal(40, state.DailyTokens.Used);
    }

    [Fact]
    public void Renew_AfterSettlementOrLapse_IsRefused_SoAnEndedGenerationNeverRetakesASlot()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, null, 1, null, null);
        var settled = Guid.NewGuid();
        Assert.True(Admission.TryAdmit(state, limits, settled, 10, Start, Lease).Admitted);
        Admission.Settle(state, limits, settled, 10, Start.AddMinutes(1));
        var unrenewed = Guid.NewGuid();
        Assert.True(Admission.TryAdmit(state, limits, unrenewed, 10, Start.AddMinutes(1), Lease).Admitted);

        Assert.False(Admission.Renew(state, settled, Start.AddMinutes(2), Lease));
        // Not renewed for a whole lease (its worker died): the lease lapsed and cannot be renewed back.
        Assert.False(Admission.Renew(state, unrenewed, Start.AddMinutes(11), Lease));

        Assert.Empty(state.Reservations);
        Assert.True(Admission.TryAdmit(state, limits, Guid.NewGuid(), 10, Start.AddMinutes(11), Lease).Admitted);
    }

    /// <summary>
    /// The slow-reader attack at the limits: a user with a concurrency limit of 2 opens two streams and never reads.
    /// Spec: a third is refused while both run; the worker ends both at the set-aside timeout and settles them, and
    /// from then their leases are free; at no moment does the user hold more than two.
    /// </summary>
    [Fact]
    public void SlowReaderAttack_SlotsFreeWhenTheSetAsideTimeoutSettlesThem_AndNeverMoreThanTheLimit()
    {
        var state = new AdmissionState();
        var limits = new UserLimits(null, null, 2, null, null);
        var setAsideTimeout = TimeSpan.FromSeconds(30);
        var attack = new[] { Guid.NewGuid(), Guid.NewGuid() };
        foreach (var stream in attack)
        {
            Assert.True(Admission.TryAdmit(state, limits, stream, 10, Start, Lease).Admitted);
        }

        // While the streams are set aside the generations are alive and renew; more streams are refused.
        Assert.True(Admission.Renew(state, attack[0], Start.AddSeconds(20), Lease));
        Assert.Equal(LimitKind.Concurrency, Admission.TryAdmit(state, limits, Guid.NewGuid(), 10, Start.AddSeconds(29), Lease).Status!.Kind);

        foreach (var stream in attack)
        {
            Admission.Settle(state, limits, stream, 10, Start + setAsideTimeout);
        }

        Assert.Equal(0, ConcurrencyLeases.Active(state.Concurrency, Start + setAsideTimeout));
        Assert.False(Admission.Renew(state, attack[1], Start + setAsideTimeout, Lease));
        Assert.True(Admission.TryAdmit(state, limits, Guid.NewGuid(), 10, Start + setAsideTimeout, Lease).Admitted);
        Assert.True(Admission.TryAdmit(state, limits, Guid.NewGuid(), 10, Start + setAsideTimeout, Lease).Admitted);
        Assert.Equal(LimitKind.Concurrency, Admission.TryAdmit(state, limits, Guid.NewGuid(), 10, Start + setAsideTimeout, Lease).Status!.Kind);
    }

    [Fact]
    public void ANewLimitKeepsCounting_ButANewAlgorithmOrWindowStartsAfresh()
    {
        var state = new AdmissionState();
        var fivePerHour = new LimitPolicy(LimitAlgorithm.FixedWindow, 5, TimeSpan.FromHours(1));
        for (var i = 0; i < 5; i++)
        {
            Assert.True(Admission.TryAdmit(state, new UserLimits(fivePerHour, null, null, null, null), Guid.NewGuid(), 1, Start, Lease).Admitted);
        }

        // Six an hour, same algorithm and window: the five already counted stay counted.
        var sixPerHour = fivePerHour with { Limit = 6 };
        Assert.True(Admission.TryAdmit(state, new UserLimits(sixPerHour, null, null, null, null), Guid.NewGuid(), 1, Start, Lease).Admitted);
        Assert.False(Admission.TryAdmit(state, new UserLimits(sixPerHour, null, null, null, null), Guid.NewGuid(), 1, Start, Lease).Admitted);

        // Another window, or another algorithm: the old counters mean something else, so counting starts again.
        var sixPerDay = sixPerHour with { Window = TimeSpan.FromDays(1) };
        Assert.True(Admission.TryAdmit(state, new UserLimits(sixPerDay, null, null, null, null), Guid.NewGuid(), 1, Start, Lease).Admitted);
        var sixSliding = sixPerDay with { Algorithm = LimitAlgorithm.SlidingWindow };
        for (var i = 0; i < 6; i++)
        {
            Assert.True(Admission.TryAdmit(state, new UserLimits(sixSliding, null, null, null, null), Guid.NewGuid(), 1, Start, Lease).Admitted);
        }

        Assert.False(Admission.TryAdmit(state, new UserLimits(sixSliding, null, null, null, null), Guid.NewGuid(), 1, Start, Lease).Admitted);
    }

    [Fact]
    public void Settle_AfterTheTokenPolicyChanged_CreditsNothingToTheNewCounters()
    {
        var state = new AdmissionState();
        var hourly = new LimitPolicy(LimitAlgorithm.FixedWindow, 100, TimeSpan.FromHours(1));
        var id = Guid.NewGuid();
        Assert.True(Admission.TryAdmit(state, new UserLimits(null, hourly, null, null, null), id, 100, Start, Lease).Admitted);

        // The window changed: the new counters start at zero, and the old reservation's unused 90 belong to the old ones.
        var daily = hourly with { Window = TimeSpan.FromDays(1) };
        Assert.True(Admission.TryAdmit(state, new UserLimits(null, daily, null, null, null), Guid.NewGuid(), 100, Start, Lease).Admitted);
        Admission.Settle(state, new UserLimits(null, daily, null, null, null), id, 10, Start);

        Assert.False(Admission.TryAdmit(state, new UserLimits(null, daily, null, null, null), Guid.NewGuid(), 1, Start, Lease).Admitted);
    }

    [Fact]
    public void Guards_RefuseNullStateAndBadArguments()
    {
        var policy = new LimitPolicy(LimitAlgorithm.TokenBucket, 10, TimeSpan.FromMinutes(1));
        Assert.Throws<ArgumentNullException>(() => RateLimiter.Refund(null!, new LimiterState(), 1, Start, Start));
        Assert.Throws<ArgumentNullException>(() => RateLimiter.Refund(policy, null!, 1, Start, Start));
        Assert.Throws<ArgumentOutOfRangeException>(() => RateLimiter.Refund(policy with { Limit = 0 }, new LimiterState(), 1, Start, Start));
        Assert.Throws<ArgumentOutOfRangeException>(() => RateLimiter.Refund(policy, new LimiterState(), -1, Start, Start));
        Assert.Throws<ArgumentNullException>(() => RateLimiter.Peek(null!, new LimiterState(), 1, Start));
        Assert.Throws<ArgumentNullException>(() => RateLimiter.Peek(policy, null!, 1, Start));
        Assert.Throws<ArgumentNullException>(() => ConcurrencyLeases.TryAcquire(null!, 1, Guid.NewGuid(), Start, Lease));
        Assert.Throws<ArgumentOutOfRangeException>(() => ConcurrencyLeases.TryAcquire(new ConcurrencyState(), -1, Guid.NewGuid(), Start, Lease));
        Assert.Throws<ArgumentOutOfRangeException>(() => ConcurrencyLeases.TryAcquire(new ConcurrencyState(), 1, Guid.NewGuid(), Start, TimeSpan.Zero));
        Assert.Throws<ArgumentNullException>(() => ConcurrencyLeases.Renew(null!, Guid.NewGuid(), Start, Lease));
        Assert.Throws<ArgumentOutOfRangeException>(() => ConcurrencyLeases.Renew(new ConcurrencyState(), Guid.NewGuid(), Start, TimeSpan.Zero));
        Assert.Throws<ArgumentNullException>(() => ConcurrencyLeases.Release(null!, Guid.NewGuid()));
        Assert.Throws<ArgumentNullException>(() => ConcurrencyLeases.Active(null!, Start));
    }
}
