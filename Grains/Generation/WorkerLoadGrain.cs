namespace Bastion.Generation;

/// <summary>
/// Holds the latest load report of each worker silo, in memory: losing it costs nothing, since workers report
/// again within a second. Reports older than <see cref="Expiry"/> (a silo that stopped) are dropped.
/// </summary>
[GrainType("bastion.worker-load")]
public sealed class WorkerLoadGrain(TimeProvider time) : Grain, IWorkerLoadGrain
{
    internal static readonly TimeSpan Expiry = TimeSpan.FromSeconds(10);

    private readonly Dictionary<SiloAddress, (WorkerLoad Load, DateTimeOffset At)> _reports = [];

    public Task ReportAsync(WorkerLoad load)
    {
        _reports[load.Silo] = (load, time.GetUtcNow());
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<WorkerLoad>> ReadAsync()
    {
        var now = time.GetUtcNow();
        foreach (var silo in _reports.Where(r => now - r.Value.At > Expiry).Select(r => r.Key).ToList())
        {
            _reports.Remove(silo);
        }

        return Task.FromResult<IReadOnlyList<WorkerLoad>>([.. _reports.Values.Select(r => r.Load)]);
    }
}
