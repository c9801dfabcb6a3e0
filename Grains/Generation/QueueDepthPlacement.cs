using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Bastion.Generation;

/// <summary>Places a grain on the compatible silo with the smallest reported batching queue (then the fewest active sequences).</summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class QueueDepthPlacement : PlacementStrategy
{
    internal static readonly QueueDepthPlacement Singleton = new();
}

/// <summary>Marks a grain class for <see cref="QueueDepthPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class QueueDepthPlacementAttribute() : PlacementAttribute(QueueDepthPlacement.Singleton);

/// <summary>
/// Chooses among the silos compatible with the grain (for generation grains: the worker silos) by the loads
/// workers report to <see cref="IWorkerLoadGrain"/>. The board is re-read in the background at most once a
/// second, never inside a placement (which must not wait on another grain's placement); between reads, each
/// placement this silo made counts as one more queued request on its silo, so a burst spreads out at once.
/// </summary>
public sealed class QueueDepthPlacementDirector(Func<Task<IReadOnlyList<WorkerLoad>>> readBoard, TimeProvider time) : IPlacementDirector
{
    public QueueDepthPlacementDirector(IGrainFactory grains, TimeProvider time)
        : this(() => grains.GetGrain<IWorkerLoadGrain>(IWorkerLoadGrain.Key).ReadAsync(), time)
    {
    }

    private static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private Dictionary<SiloAddress, WorkerLoad> _reported = [];
    private readonly Dictionary<SiloAddress, int> _placedSinceRead = [];
    private DateTimeOffset _readAt = DateTimeOffset.MinValue;
    private int _reading;

    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        if (silos.Length == 0)
        {
            throw new OrleansException($"No silo can host {target.GrainIdentity.Type}.");
        }

        if (time.GetUtcNow() - _readAt > RefreshInterval && Interlocked.Exchange(ref _reading, 1) == 0)
        {
            _ = ReadBoardAsync();
        }

        lock (_gate)
        {
            // A draining worker finishes what it runs and takes nothing new, unless it is the only one left.
            var open = silos.Where(silo => !(_reported.TryGetValue(silo, out var load) && load.Draining)).ToArray();
            var chosen = Choose(open.Length > 0 ? open : silos, silo => Load(silo), Random.Shared);
            _placedSinceRead[chosen] = _placedSinceRead.GetValueOrDefault(chosen) + 1;
            return Task.FromResult(chosen);
        }
    }

    /// <summary>The silo with the least load (queue depth, then active sequences); ties broken at random.</summary>
    public static SiloAddress Choose(IReadOnlyList<SiloAddress> silos, Func<SiloAddress, (int QueueDepth, int ActiveSequences)> load, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfZero(silos.Count);
        var best = new List<SiloAddress>();
        (int, int) least = (int.MaxValue, int.MaxValue);
        foreach (var silo in silos)
        {
            var current = load(silo);
            var comparison = current.CompareTo(least);
            if (comparison < 0)
            {
                least = current;
                best.Clear();
            }

            if (comparison <= 0)
            {
                best.Add(silo);
            }
        }

        return best[random.Next(best.Count)];
    }

    private (int, int) Load(SiloAddress silo)
    {
        var placed = _placedSinceRead.GetValueOrDefault(silo);
        return _reported.TryGetValue(silo, out var load) ? (load.QueueDepth + placed, load.ActiveSequences) : (placed, 0);
    }

    private async Task ReadBoardAsync()
    {
        try
        {
            var loads = await readBoard();
            lock (_gate)
            {
                _reported = loads.ToDictionary(l => l.Silo);
                _placedSinceRead.Clear();
                _readAt = time.GetUtcNow();
            }
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            // Placement goes on with what it knows; the next placement tries again.
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }
}
