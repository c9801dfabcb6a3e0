using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Grains;

/// <summary>
/// A fake clock that counts the timers made on it (in all, still armed, and per due time), so a test advances it only
/// once the code under test is waiting on it (and can tell that it is).
/// </summary>
internal sealed class CountingTimeProvider : FakeTimeProvider
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly Lock _gate = new();
    private readonly Dictionary<TimeSpan, int> _byDueTime = [];
    private TaskCompletionSource _made = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _created;
    private int _armed;

    public CountingTimeProvider()
    {
    }

    /// <summary>A clock that starts at <paramref name="start"/> (for a whole silo: near the real time, which the certificates and tokens it meets were made on).</summary>
    public CountingTimeProvider(DateTimeOffset start)
        : base(start)
    {
    }

    /// <summary>Timers made so far.</summary>
    public int Timers => Volatile.Read(ref _created);

    /// <summary>Timers made and not yet disposed (a pending <c>Task.Delay</c> holds one).</summary>
    public int ArmedTimers => Volatile.Read(ref _armed);

    /// <summary>Timers made so far that were first due <paramref name="dueTime"/> after their making.</summary>
    public int TimersDueAfter(TimeSpan dueTime)
    {
        lock (_gate)
        {
            return _byDueTime.GetValueOrDefault(dueTime);
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new CountedTimer(this, base.CreateTimer(callback, state, dueTime, period));
        Interlocked.Increment(ref _armed);
        Interlocked.Increment(ref _created);
        TaskCompletionSource made;
        lock (_gate)
        {
            _byDueTime[dueTime] = _byDueTime.GetValueOrDefault(dueTime) + 1;
            made = _made;
            _made = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        made.SetResult();
        return timer;
    }

    /// <summary>Waits until the <paramref name="timers"/>th timer exists, then advances by <paramref name="by"/>.</summary>
    public void AdvanceWhenWaiting(int timers, TimeSpan by)
    {
        Assert.True(SpinWait.SpinUntil(() => Timers >= timers, Patience), $"timer {timers} was never made");
        Advance(by);
    }

    /// <summary>Waits (without spinning) until <paramref name="count"/> timers due <paramref name="dueTime"/> after their making exist.</summary>
    public async Task WaitForTimersDueAfterAsync(TimeSpan dueTime, int count, string what)
    {
        while (true)
        {
            Task made;
            lock (_gate)
            {
                if (_byDueTime.GetValueOrDefault(dueTime) >= count)
                {
                    return;
                }

                made = _made.Task;
            }

            try
            {
                await made.WaitAsync(Patience);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"{what}: no timer due after {dueTime} was made within {Patience.TotalSeconds} s of real time");
            }
        }
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
