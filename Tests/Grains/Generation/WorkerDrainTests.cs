using Bastion.Generation;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Grains.Generation;

/// <summary>Draining waits for running generations up to the timeout, then stops the rest.</summary>
public sealed class WorkerDrainTests
{
    [Fact]
    public async Task Drain_WaitsForRunningGenerations_ThenStopsNothing()
    {
        var drain = new WorkerDrain();
        var time = new FakeTimeProvider();
        var stopped = 0;
        var first = drain.Register(new object(), () => stopped++);
        var second = drain.Register(new object(), () => stopped++);

        var draining = drain.DrainAsync(TimeSpan.FromSeconds(30), time, CancellationToken.None);

        Assert.True(drain.IsDraining);
        first.Dispose();
        Assert.False(draining.IsCompleted);
        second.Dispose();
        Assert.Equal(0, await draining);
        Assert.Equal(0, stopped);
        Assert.Equal(2, drain.Started);
    }

    [Fact]
    public async Task Drain_AtTheTimeout_StopsWhatStillRuns()
    {
        var drain = new WorkerDrain();
        var time = new FakeTimeProvider();
        var stopped = new List<string>();
        using var slow = drain.Register(new object(), () => stopped.Add("slow"));
        var quick = drain.Register(new object(), () => stopped.Add("quick"));

        var draining = drain.DrainAsync(TimeSpan.FromSeconds(30), time, CancellationToken.None);
        quick.Dispose();
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(draining.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(1, await draining);
        Assert.Equal(["slow"], stopped);
    }

    [Fact]
    public async Task Drain_WithNothingRunning_EndsAtOnce()
    {
        var drain = new WorkerDrain();

        Assert.Equal(0, await drain.DrainAsync(TimeSpan.FromHours(1), new FakeTimeProvider(), CancellationToken.None));
    }
}
