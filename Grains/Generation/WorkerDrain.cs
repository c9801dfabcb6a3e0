namespace Bastion.Generation;

/// <summary>
/// The generations running on this worker silo, so that a silo asked to stop can drain: it takes no new
/// generation, waits for the running ones up to a timeout, then ends the rest with a retryable error.
/// </summary>
public sealed class WorkerDrain
{
    private readonly Lock _gate = new();
    private readonly Dictionary<object, Action> _running = [];
    private TaskCompletionSource _idle = CompletedIdle();
    private volatile bool _draining;

    /// <summary>True once the silo has been asked to stop: placement avoids it and new generations are refused.</summary>
    public bool IsDraining => _draining;

    /// <summary>How many generations are running here.</summary>
    public int Running
    {
        get
        {
            lock (_gate)
            {
                return _running.Count;
            }
        }
    }

    /// <summary>How many generations have started here since the silo started.</summary>
    public long Started { get; private set; }

    /// <summary>Records a running generation; <paramref name="stop"/> ends it if the drain times out. Dispose the result when it ends.</summary>
    public IDisposable Register(object generation, Action stop)
    {
        lock (_gate)
        {
            if (_running.Count == 0)
            {
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            _running[generation] = stop;
            Started++;
        }

        return new Registration(this, generation);
    }

    /// <summary>
    /// Stops taking generations, waits up to <paramref name="timeout"/> for the running ones to finish, then stops
    /// the rest. Returns how many had to be stopped.
    /// </summary>
    public async Task<int> DrainAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        _draining = true;
        Task idle;
        lock (_gate)
        {
            idle = _idle.Task;
        }

        try
        {
            await idle.WaitAsync(timeout, time, cancellationToken);
            return 0;
        }
        catch (Exception exception) when (exception is TimeoutException or OperationCanceledException)
        {
            List<Action> remaining;
            lock (_gate)
            {
                remaining = [.. _running.Values];
            }

            foreach (var stop in remaining)
            {
                stop();
            }

            return remaining.Count;
        }
    }

    private void Remove(object generation)
    {
        lock (_gate)
        {
            if (_running.Remove(generation) && _running.Count == 0)
            {
                _idle.TrySetResult();
            }
        }
    }

    private static TaskCompletionSource CompletedIdle()
    {
        var idle = new TaskCompletionSource();
        idle.SetResult();
        return idle;
    }

    private sealed class Registration(WorkerDrain drain, object generation) : IDisposable
    {
        public void Dispose() => drain.Remove(generation);
    }
}
