using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

public sealed class ConcurrencyLeasesTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan OneTick = TimeSpan.FromTicks(1);

    [Fact]
    public void TryAcquire_AtLimit_RefusesAnotherGeneration()
    {
        var state = new ConcurrencyState();

        Assert.True(ConcurrencyLeases.TryAcquire(state, 2, Guid.NewGuid(), T0, Lease));
        Assert.True(ConcurrencyLeases.TryAcquire(state, 2, Guid.NewGuid(), T0, Lease));
        Assert.False(ConcurrencyLeases.TryAcquire(state, 2, Guid.NewGuid(), T0, Lease));
        Assert.Equal(2, ConcurrencyLeases.Active(state, T0));
    }

    [Fact]
    public void Release_HeldLease_FreesItsSlot()
    {
        var state = new ConcurrencyState();
        var first = Guid.NewGuid();
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, first, T0, Lease));

        Assert.True(ConcurrencyLeases.Release(state, first));

        Assert.False(ConcurrencyLeases.Release(state, first));
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0, Lease));
    }

    [Fact]
    public void TryAcquire_SettlementNeverCame_SlotFreesExactlyWhenTheLeaseExpires()
    {
        var state = new ConcurrencyState();
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0, Lease));

        Assert.False(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0 + Lease - OneTick, Lease));
        Assert.Equal(1, ConcurrencyLeases.Active(state, T0 + Lease - OneTick));
        Assert.Equal(0, ConcurrencyLeases.Active(state, T0 + Lease));
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0 + Lease, Lease));
        Assert.Single(state.Leases);
    }

    [Fact]
    public void TryAcquire_SameLeaseAgain_RenewsWithoutTakingASecondSlot()
    {
        var state = new ConcurrencyState();
        var lease = Guid.NewGuid();
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, lease, T0, Lease));

        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, lease, T0 + TimeSpan.FromMinutes(5), Lease));

        Assert.Equal(1, ConcurrencyLeases.Active(state, T0 + Lease));
        Assert.Equal(T0 + TimeSpan.FromMinutes(15), state.Leases[lease]);
    }

    [Fact]
    public void TryAcquire_LeaseFromBeforeClockJumpedBack_BlocksAtMostOneLeaseDuration()
    {
        var state = new ConcurrencyState();
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0 + TimeSpan.FromDays(30), Lease));

        Assert.False(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0, Lease));

        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0 + Lease, Lease));
    }

    [Fact]
    public void TryAcquire_ZeroLimit_RefusesEveryGeneration()
    {
        var state = new ConcurrencyState();

        Assert.False(ConcurrencyLeases.TryAcquire(state, 0, Guid.NewGuid(), T0, Lease));
        Assert.Empty(state.Leases);
    }

    [Fact]
    public void Renew_LeaseInForce_HoldsTheSlotOneMoreDurationFromNow()
    {
        var state = new ConcurrencyState();
        var running = Guid.NewGuid();
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, running, T0, Lease));

        // Renewed 9 minutes in: the lease now ends at 19 minutes, not at 10.
        Assert.True(ConcurrencyLeases.Renew(state, running, T0 + TimeSpan.FromMinutes(9), Lease));

        Assert.False(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0 + TimeSpan.FromMinutes(19) - OneTick, Lease));
        Assert.True(ConcurrencyLeases.TryAcquire(state, 1, Guid.NewGuid(), T0 + TimeSpan.FromMinutes(19), Lease));
    }

    [Fact]
    public void Renew_ExpiredOrReleasedLease_IsRefusedAndTakesNoSlot()
    {
        var state = new ConcurrencyState();
        var expired = Guid.NewGuid();
        var released = Guid.NewGuid();
        Assert.True(ConcurrencyLeases.TryAcquire(state, 2, expired, T0, Lease));
        Assert.True(ConcurrencyLeases.TryAcquire(state, 2, released, T0, Lease));
        ConcurrencyLeases.Release(state, released);

        Assert.False(ConcurrencyLeases.Renew(state, expired, T0 + Lease, Lease));
        Assert.False(ConcurrencyLeases.Renew(state, released, T0, Lease));
        Assert.Equal(0, ConcurrencyLeases.Active(state, T0 + Lease));
    }
}
