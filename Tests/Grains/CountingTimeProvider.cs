using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Grains;

/// <summary>
/// A fake clock that counts the timers made on it and those still armed, so a test advances it only once the code under
/// test is waiting on it (and can tell that it is).
/// </summary>
internal sealed class CountingTimeProvider : FakeTimeProvider
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private int _created;
    private int _armed;

    /// <summary>Timers made so far.</summary>
    public int Timers => Volatile.Read(ref _created);

    /// <summary>Timers made and not yet disposed (a pending <c>Task.Delay</c> holds one).</summary>
    public int ArmedTimers => Volatile.Read(ref _armed);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new CountedTimer(this, base.CreateTimer(callback, state, dueTime, period));
        Interlocked.Increment(ref _armed);
        Interlocked.Increment(ref _created);
        return timer;
    }

    /// <summary>Waits until the <paramref name="timers"/>th timer exists, then advances by <paramref name="by"/>.</summary>
    public void AdvanceWhenWaiting(int timers, TimeSpan by)
    {
        Assert.True(SpinWait.SpinUntil(() => Timers >= timers, Patience), $"timer {timers} was never made");
        Advance(by);
    }

    private sealed class CountedTimer(CountingTimeProvider owner, ITimer inner) : ITimer
    {
        private int _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref owner._armed);
            }

            inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
