using Bastion.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>Anonymous readiness callers share one run of the checks per window; an admin's run is their own.</summary>
public sealed class ReadinessReportsTests
{
    // The window, written down here rather than read from the product.
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(2);

    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly CountingCheck _database = new();

    [Fact]
    public async Task Shared_ManyCallsWithinTheWindow_RunTheChecksOnce_ThenAgainOnceItHasPassed()
    {
        var reports = CreateReports();

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HealthStatus.Healthy, (await reports.SharedAsync(CancellationToken.None)).Status);
        }

        _time.Advance(Window - TimeSpan.FromTicks(1));
        await reports.SharedAsync(CancellationToken.None);
        Assert.Equal(1, _database.Runs);

        _time.Advance(TimeSpan.FromTicks(1));
        await reports.SharedAsync(CancellationToken.None);
        await reports.SharedAsync(CancellationToken.None);
        Assert.Equal(2, _database.Runs);
    }

    [Fact]
    public async Task Shared_ConcurrentCallersWhileARunIsInFlight_WaitForThatRun()
    {
        var release = new TaskCompletionSource<HealthCheckResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _database.Result = release.Task;
        var reports = CreateReports();

        var waiting = Enumerable.Range(0, 10).Select(_ => reports.SharedAsync(CancellationToken.None)).ToList();
        release.SetResult(HealthCheckResult.Unhealthy("database unreachable"));
        var answers = await Task.WhenAll(waiting);

        Assert.All(answers, report => Assert.Equal(HealthStatus.Unhealthy, report.Status));
        Assert.Equal(1, _database.Runs);
    }

    [Fact]
    public async Task Fresh_RunsEveryTime_AndOnlyTheReadinessChecks()
    {
        var reports = CreateReports();

        await reports.FreshAsync(CancellationToken.None);
        var report = await reports.FreshAsync(CancellationToken.None);

        Assert.Equal(2, _database.Runs);
        Assert.Equal(["database"], report.Entries.Keys);
    }

    private ReadinessReports CreateReports()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddHealthChecks()
            .AddCheck("database", _database, tags: ["ready"])
            .AddCheck("not-readiness", () => throw new InvalidOperationException("A check without the ready tag ran."));
        return new ReadinessReports(services.BuildServiceProvider().GetRequiredService<HealthCheckService>(), _time);
    }

    private sealed class CountingCheck : IHealthCheck
    {
        private int _runs;

        public int Runs => Volatile.Read(ref _runs);

        public Task<HealthCheckResult> Result { get; set; } = Task.FromResult(HealthCheckResult.Healthy());

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _runs);
            return Result;
        }
    }
}
