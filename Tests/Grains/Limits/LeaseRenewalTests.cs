using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

/// <summary>A running generation renews its concurrency lease, and only while it runs.</summary>
public sealed class LeaseRenewalTests
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task RenewWhileRunning_RenewsEveryThirdOfTheLease_AndNeverAfterTheRunEnds()
    {
        var time = new CountingTimeProvider();
        var run = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var renewals = 0;
        var lost = 0;
        var renewing = LeaseRenewal.RenewWhileRunningAsync(run.Task, Lease, () =>
        {
            Interlocked.Increment(ref renewals);
            return Task.FromResult(true);
        }, () => lost++, time);

        Assert.Equal(Interval, LeaseRenewal.IntervalFor(Lease));
        for (var expected = 1; expected <= 3; expected++)
        {
            time.AdvanceWhenWaiting(expected, Interval - TimeSpan.FromTicks(1));
            Assert.Equal(expected - 1, Volatile.Read(ref renewals));
            time.Advance(TimeSpan.FromTicks(1));
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref renewals) == expected, Guard));
        }

        run.SetResult();
        await renewing.WaitAsync(Guard);
        time.Advance(Lease * 4);

        Assert.Equal(3, renewals);
        Assert.Equal(0, lost);
    }

    [Fact]
    public async Task RenewWhileRunning_RenewalRefused_StopsTheGenerationOnce()
    {
        var time = new CountingTimeProvider();
        var run = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lost = 0;
        var renewing = LeaseRenewal.RenewWhileRunningAsync(run.Task, Lease, () => Task.FromResult(false), () => lost++, time);

        time.AdvanceWhenWaiting(1, Interval);
        await renewing.WaitAsync(Guard);

        Assert.Equal(1, lost);
        Assert.Equal(1, time.Timers);
    }

    [Fact]
    public async Task RenewWhileRunning_NoRenewalGetsThroughForALease_StopsTheGeneration()
    {
        var time = new CountingTimeProvider();
        var run = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var attempts = 0;
        var lost = 0;
        var renewing = LeaseRenewal.RenewWhileRunningAsync(run.Task, Lease, () =>
        {
            Interlocked.Increment(ref attempts);
            return Task.FromException<bool>(new TimeoutException());
        }, () => Interlocked.Increment(ref lost), time);

        // Attempts at 1 and 2 minutes fail while the lease still holds; the one at 3 minutes fails with it lapsed.
        time.AdvanceWhenWaiting(1, Interval);
        time.AdvanceWhenWaiting(2, Interval);
        Assert.Equal(0, Volatile.Read(ref lost));
        time.AdvanceWhenWaiting(3, Interval);
        await renewing.WaitAsync(Guard);

        Assert.Equal(3, attempts);
        Assert.Equal(1, lost);
    }
}
