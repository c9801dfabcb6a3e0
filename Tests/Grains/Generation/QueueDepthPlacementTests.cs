using System.Net;
using Bastion.Generation;
using Orleans.Runtime.Placement;

namespace Bastion.Tests.Grains.Generation;

/// <summary>Generation grains go to the worker silo with the shortest batching queue.</summary>
public sealed class QueueDepthPlacementTests
{
    private static readonly SiloAddress Busy = SiloAddress.New(IPAddress.Loopback, 11111, 1);
    private static readonly SiloAddress Idle = SiloAddress.New(IPAddress.Loopback, 11112, 1);
    private static readonly SiloAddress Fresh = SiloAddress.New(IPAddress.Loopback, 11113, 1);

    [Fact]
    public void Choose_TakesTheSmallestQueue_ThenTheFewestActiveSequences()
    {
        var loads = new Dictionary<SiloAddress, (int, int)> { [Busy] = (3, 0), [Idle] = (1, 9), [Fresh] = (1, 2) };

        Assert.Equal(Fresh, QueueDepthPlacementDirector.Choose([Busy, Idle, Fresh], s => loads[s], new Random(1)));
    }

    [Fact]
    public void Choose_BreaksTiesAmongTheLeastLoadedOnly()
    {
        var loads = new Dictionary<SiloAddress, (int, int)> { [Busy] = (2, 0), [Idle] = (0, 0), [Fresh] = (0, 0) };
        var random = new Random(7);

        var chosen = Enumerable.Range(0, 100).Select(_ => QueueDepthPlacementDirector.Choose([Busy, Idle, Fresh], s => loads[s], random)).ToHashSet();

        Assert.Equal(new HashSet<SiloAddress> { Idle, Fresh }, chosen);
    }

    [Fact]
    public async Task Director_SpreadsABurstByReportedDepthPlusItsOwnPlacements()
    {
        IReadOnlyList<WorkerLoad> board = [new(Busy, 5, 16), new(Idle, 0, 0)];
        var director = new QueueDepthPlacementDirector(() => Task.FromResult(board), TimeProvider.System);
        var context = new Context([Busy, Idle]);
        var target = new PlacementTarget(GrainId.Create("bastion.generation", Guid.NewGuid().ToString("N")), [], default, 0);

        var placed = new List<SiloAddress>();
        for (var i = 0; i < 15; i++)
        {
            placed.Add(await director.OnAddActivation(QueueDepthPlacement.Singleton, target, context));
        }

        // The idle silo takes the first five; then both queues are equal and placements alternate.
        Assert.All(placed.Take(5), s => Assert.Equal(Idle, s));
        Assert.Equal(10, placed.Count(s => s == Idle));
        Assert.Equal(5, placed.Count(s => s == Busy));
    }

    [Fact]
    public async Task Director_PlacesOnlyOnCompatibleSilos()
    {
        IReadOnlyList<WorkerLoad> board = [new(Busy, 5, 0), new(Idle, 0, 0)];
        var director = new QueueDepthPlacementDirector(() => Task.FromResult(board), TimeProvider.System);
        var target = new PlacementTarget(GrainId.Create("bastion.generation", "x"), [], default, 0);

        Assert.Equal(Busy, await director.OnAddActivation(QueueDepthPlacement.Singleton, target, new Context([Busy])));
    }

    [Fact]
    public async Task Director_AvoidsADrainingWorker_UnlessItIsTheOnlyOne()
    {
        IReadOnlyList<WorkerLoad> board = [new(Idle, 0, 0, Draining: true), new(Busy, 9, 16)];
        var director = new QueueDepthPlacementDirector(() => Task.FromResult(board), TimeProvider.System);
        var target = new PlacementTarget(GrainId.Create("bastion.generation", "d"), [], default, 0);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(Busy, await director.OnAddActivation(QueueDepthPlacement.Singleton, target, new Context([Idle, Busy])));
        }

        Assert.Equal(Idle, await director.OnAddActivation(QueueDepthPlacement.Singleton, target, new Context([Idle])));
    }

    private sealed class Context(SiloAddress[] silos) : IPlacementContext
    {
        public SiloAddress LocalSilo => silos[0];

        public SiloStatus LocalSiloStatus => SiloStatus.Active;

        public SiloAddress[] GetCompatibleSilos(PlacementTarget target) => silos;

        public IReadOnlyDictionary<ushort, SiloAddress[]> GetCompatibleSilosWithVersions(PlacementTarget target) => new Dictionary<ushort, SiloAddress[]> { [0] = silos };
    }
}
