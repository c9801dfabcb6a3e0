using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bastion.Hosting;

/// <summary>
/// The readiness checks (tag <c>ready</c>: cluster, both databases, models, keys). Anonymous callers
/// share one report, run at most once per <see cref="CacheWindow"/> however many ask at once, so
/// nobody can make a silo hammer its databases by calling <c>/readyz</c>; an admin asking for the
/// details gets a run of their own.
/// </summary>
internal sealed class ReadinessReports(HealthCheckService checks, TimeProvider time)
{
    /// <summary>How stale the shared report may be: a balancer learns of a change this much later at most.</summary>
    public static readonly TimeSpan CacheWindow = TimeSpan.FromSeconds(2);

    private readonly Lock _gate = new();
    private Task<HealthReport>? _shared;
    private DateTimeOffset _sharedSince;

    /// <summary>The shared report: the running or finished run that started less than <see cref="CacheWindow"/> ago, or a new one.</summary>
    public Task<HealthReport> SharedAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (_shared is null || _shared.IsFaulted || _shared.IsCanceled || now - _sharedSince >= CacheWindow)
            {
                // Not the caller's token: the run is everyone's, and one caller going away must not cancel it for the rest.
                _shared = checks.CheckHealthAsync(IsReadiness, CancellationToken.None);
                _sharedSince = now;
            }

            return _shared.WaitAsync(cancellationToken);
        }
    }

    /// <summary>A run of its own, for a caller entitled to the details.</summary>
    public Task<HealthReport> FreshAsync(CancellationToken cancellationToken) => checks.CheckHealthAsync(IsReadiness, cancellationToken);

    private static bool IsReadiness(HealthCheckRegistration check) => check.Tags.Contains("ready");
}
