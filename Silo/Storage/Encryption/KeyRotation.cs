using Bastion.Security;

namespace Bastion.Storage;

/// <summary>KEK versions, how many data keys each wraps, and retiring one; shared by <c>keys</c> commands and <c>/admin/keys</c>.</summary>
public sealed class KeyRotation(DataKeyStore dataKeys, IKeyProvider keys)
{
    /// <summary>Every KEK version the provider has or a data key names, with its live data keys.</summary>
    public async Task<IReadOnlyList<KekUsage>> ListAsync(CancellationToken cancellationToken)
    {
        var counts = await dataKeys.CountByKekVersionAsync(cancellationToken);
        var current = keys.CurrentKek.Version;
        var available = keys.KekVersions;
        return [.. available.Union(counts.Keys).Order().Select(version => new KekUsage(
            version, version == current, available.Contains(version), counts.GetValueOrDefault(version)))];
    }

    /// <summary>
    /// Retires <paramref name="version"/> unless it is current, unknown, or a live data key is still
    /// wrapped with it. A version that is not current never wraps a new key, so a zero count stays zero.
    /// </summary>
    public async Task<RetireOutcome> RetireAsync(int version, CancellationToken cancellationToken)
    {
        if (version == keys.CurrentKek.Version)
        {
            return new RetireOutcome(RetireResult.Current, 0);
        }

        if (!keys.KekVersions.Contains(version))
        {
            return new RetireOutcome(RetireResult.Unknown, 0);
        }

        var inUse = (await dataKeys.CountByKekVersionAsync(cancellationToken)).GetValueOrDefault(version);
        if (inUse > 0)
        {
            return new RetireOutcome(RetireResult.InUse, inUse);
        }

        try
        {
            keys.RetireKek(version);
        }
        catch (NotSupportedException)
        {
            return new RetireOutcome(RetireResult.Unused, 0);
        }

        return new RetireOutcome(RetireResult.Retired, 0);
    }
}

/// <summary>One KEK version: whether it wraps new keys, whether the provider still has it, and how many live data keys it wraps.</summary>
public sealed record KekUsage(int Version, bool Current, bool Available, long DataKeys);

/// <summary>What <see cref="KeyRotation.RetireAsync"/> did; <paramref name="DataKeys"/> is the count that blocked it.</summary>
public sealed record RetireOutcome(RetireResult Result, long DataKeys);

/// <summary>Whether a KEK version was retired, and if not, why.</summary>
public enum RetireResult
{
    Retired,

    /// <summary>Nothing uses it, but the provider's keys are managed elsewhere (Key Vault): disable the version there.</summary>
    Unused,
    Current,
    Unknown,
    InUse,
}

/// <summary>
/// The background re-wrap of this silo: one run at a time, started by <c>POST /admin/keys/rewrap</c>.
/// Its progress is this silo's; what remains on older KEK versions is read from the database.
/// </summary>
public sealed partial class RewrapJob(DataKeyStore dataKeys, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<RewrapJob> logger)
{
    private readonly Lock _lock = new();
    private RewrapProgress _progress = new(RewrapState.Idle, 0, 0, null, null, null);
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
            if (_progress.State == RewrapState.Running)
            {
                return false;
            }

            _progress = new RewrapProgress(RewrapState.Running, 0, 0, time.GetUtcNow(), null, null);
            _run = Task.Run(RunAsync);
            return true;
        }
    }

    private async Task RunAsync()
    {
        try
        {
            var total = await dataKeys.RewrapAllAsync((done, count) => Update(p => p with { Done = done, Total = count }), lifetime.ApplicationStopping);
            Update(p => p with { State = RewrapState.Done, Done = total, Total = total, FinishedAt = time.GetUtcNow() });
            LogFinished(logger, total);
        }
        catch (Exception exception) when (exception is DataKeyUnavailableException or Npgsql.NpgsqlException or OperationCanceledException)
        {
            // Messages name key ids, scopes (pseudonyms) and versions, never key material.
            var error = exception is OperationCanceledException ? "The silo stopped during the re-wrap; start it again." : exception.Message;
            Update(p => p with { State = RewrapState.Failed, FinishedAt = time.GetUtcNow(), Error = error });
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
public sealed record RewrapProgress(RewrapState State, long Total, long Done, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error);

/// <summary>Where a re-wrap run is.</summary>
public enum RewrapState
{
    Idle,
    Running,
    Done,
    Failed,
}
