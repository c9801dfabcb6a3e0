using Bastion.Cluster;
using Bastion.Security;

namespace Bastion.Storage;

/// <summary>KEK versions, how many data keys each wraps, and retiring one; shared by <c>keys</c> commands and <c>/admin/keys</c>.</summary>
public sealed class KeyRotation(DataKeyStore dataKeys, IKeyProvider keys)
{
    /// <summary>Every KEK version the provider has or a data key names, with its live data keys.</summary>
    public async Task<IReadOnlyList<KekVersionInfo>> ListAsync(CancellationToken cancellationToken)
    {
        var counts = await dataKeys.CountByKekVersionAsync(cancellationToken);
        var current = keys.CurrentKek.Version;
        var available = keys.KekVersions;
        return [.. available.Union(counts.Keys).Order().Select(version => new KekVersionInfo(
            version, version == current, available.Contains(version), counts.GetValueOrDefault(version)))];
    }

    /// <summary>
    /// Retires <paramref name="version"/> unless it is current, unknown, or a live data key is still
    /// wrapped with it. A version that is not current never wraps a new key, so a zero count stays zero.
    /// </summary>
    public async Task<KekRetirement> RetireAsync(int version, CancellationToken cancellationToken)
    {
        if (version == keys.CurrentKek.Version)
        {
            return new KekRetirement(version, KekRetireResult.Current, 0);
        }

        if (!keys.KekVersions.Contains(version))
        {
            return new KekRetirement(version, KekRetireResult.NotFound, 0);
        }

        var inUse = (await dataKeys.CountByKekVersionAsync(cancellationToken)).GetValueOrDefault(version);
        if (inUse > 0)
        {
            return new KekRetirement(version, KekRetireResult.InUse, inUse);
        }

        try
        {
            keys.RetireKek(version);
        }
        catch (NotSupportedException)
        {
            return new KekRetirement(version, KekRetireResult.Unused, 0);
        }

        return new KekRetirement(version, KekRetireResult.Retired, 0);
    }

    /// <summary>
    /// <paramref name="progress"/> (a silo's run) with what remains on versions below the current one, counted in the
    /// database, so that it is the cluster's truth whichever silo answers.
    /// </summary>
    public async Task<KekRewrapStatus> RewrapStatusAsync(RewrapProgress progress, CancellationToken cancellationToken)
    {
        var current = keys.CurrentKek.Version;
        var remaining = (await dataKeys.CountByKekVersionAsync(cancellationToken)).Where(count => count.Key < current).Sum(count => count.Value);
        return new KekRewrapStatus(progress.State, current, progress.Total, progress.Done, remaining, progress.StartedAt, progress.FinishedAt, progress.Error);
    }
}

/// <summary>
/// The background re-wrap of this silo: one run at a time, started by <c>POST /admin/keys/rewrap</c>.
/// Its progress is this silo's; what remains on older KEK versions is read from the database.
/// </summary>
public sealed partial class RewrapJob(DataKeyStore dataKeys, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<RewrapJob> logger)
{
    private readonly Lock _lock = new();
    private RewrapProgress _progress = new(KekRewrapState.Idle, 0, 0, null, null, null);
    private Task _run = Task.CompletedTask;

    /// <summary>The latest progress of this silo's run.</summary>
    public RewrapProgress Progress
    {
        get
        {
            lock (_lock)
            {
                return _progress;
            }
        }
    }

    /// <summary>The current (or last) run; completes when it has finished, failed or been stopped.</summary>
    public Task Completion
    {
        get
        {
            lock (_lock)
            {
                return _run;
            }
        }
    }

    /// <summary>Starts a run unless one is running; false when one is.</summary>
    public bool TryStart()
    {
        lock (_lock)
        {
            if (_progress.State == KekRewrapState.Running)
            {
                return false;
            }

            _progress = new RewrapProgress(KekRewrapState.Running, 0, 0, time.GetUtcNow(), null, null);
            _run = Task.Run(RunAsync);
            return true;
        }
    }

    private async Task RunAsync()
    {
        try
        {
            var total = await dataKeys.RewrapAllAsync((done, count) => Update(p => p with { Done = done, Total = count }), lifetime.ApplicationStopping);
            Update(p => p with { State = KekRewrapState.Done, Done = total, Total = total, FinishedAt = time.GetUtcNow() });
            LogFinished(logger, total);
        }
        catch (Exception exception) when (exception is DataKeyUnavailableException or Npgsql.NpgsqlException or OperationCanceledException)
        {
            // Messages name key ids, scopes (pseudonyms) and versions, never key material.
            var error = exception is OperationCanceledException ? "The silo stopped during the re-wrap; start it again." : exception.Message;
            Update(p => p with { State = KekRewrapState.Failed, FinishedAt = time.GetUtcNow(), Error = error });
            LogFailed(logger, error);
        }
    }

    private void Update(Func<RewrapProgress, RewrapProgress> change)
    {
        lock (_lock)
        {
            _progress = change(_progress);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "KEK re-wrap finished: {Total} data key(s) moved to the current KEK version")]
    private static partial void LogFinished(ILogger logger, long total);

    [LoggerMessage(Level = LogLevel.Error, Message = "KEK re-wrap failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string error);
}

/// <summary>A re-wrap run: <paramref name="Done"/> of <paramref name="Total"/> keys that were on older KEK versions when it began.</summary>
public sealed record RewrapProgress(KekRewrapState State, long Total, long Done, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error);
