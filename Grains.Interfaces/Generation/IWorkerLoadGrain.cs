namespace Bastion.Generation;

/// <summary>
/// The board where worker silos report their batching load and the models they serve (a singleton keyed
/// <c>"worker-load"</c>, in memory): the queue-depth placement of generation grains reads it, and so does
/// <c>GET /v1/models</c>, which lists the cluster's models on silos that load none themselves.
/// </summary>
[Alias("bastion.worker-load")]
public interface IWorkerLoadGrain : IGrainWithStringKey
{
    /// <summary>The key of the one board.</summary>
    const string Key = "worker-load";

    /// <summary>A worker's current load, reported every second or so.</summary>
    [Alias("report")]
    Task ReportAsync(WorkerLoad load);

    /// <summary>The latest report of every worker heard from recently.</summary>
    [Alias("read")]
    Task<IReadOnlyList<WorkerLoad>> ReadAsync();
}

/// <summary>One worker silo's load, summed over its models.</summary>
/// <param name="Silo">The worker silo.</param>
/// <param name="QueueDepth">Requests waiting for (or holding a place for) a batch slot.</param>
/// <param name="ActiveSequences">Sequences holding a batch slot.</param>
/// <param name="Draining">The silo is stopping: it finishes what it runs and takes no new generation.</param>
[GenerateSerializer, Immutable, Alias("bastion.worker-load-report")]
public sealed record WorkerLoad(
    [property: Id(0)] SiloAddress Silo,
    [property: Id(1)] int QueueDepth,
    [property: Id(2)] int ActiveSequences,
    [property: Id(3)] bool Draining = false);
