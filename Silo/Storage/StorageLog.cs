
namespace Bastion.Storage;

/// <summary>Source-generated log messages of the storage feature. Never log a password or a connection string.</summary>
internal static partial class StorageLog
{
    [LoggerMessage(1, LogLevel.Information, "Initializing PostgreSQL data directory {DataDirectory}")]
    public static partial void InitializingCluster(ILogger logger, string dataDirectory);

    [LoggerMessage(2, LogLevel.Information, "Started embedded PostgreSQL {Version} on 127.0.0.1:{Port} (data directory {DataDirectory})")]
    public static partial void Started(ILogger logger, string version, int port, string dataDirectory);

    [LoggerMessage(3, LogLevel.Warning, "Removing stale postmaster.pid of process {ProcessId}, which is no longer running")]
    public static partial void RemovingStalePidFile(ILogger logger, int processId);

    [LoggerMessage(4, LogLevel.Warning, "A PostgreSQL server (process {ProcessId}) is still running on {DataDirectory}; stopping it before starting again")]
    public static partial void StoppingLeftoverServer(ILogger logger, int processId, string dataDirectory);

    [LoggerMessage(5, LogLevel.Information, "Stopped embedded PostgreSQL on port {Port}")]
    public static partial void Stopped(ILogger logger, int port);

    [LoggerMessage(6, LogLevel.Warning, "Could not stop embedded PostgreSQL on port {Port}")]
    public static partial void StopFailed(ILogger logger, Exception exception, int port);

    [LoggerMessage(7, LogLevel.Warning, "PostgreSQL did not start on port {Port} (attempt {Attempt}); retrying on another port")]
    public static partial void StartRetry(ILogger logger, Exception exception, int port, int attempt);

    [LoggerMessage(8, LogLevel.Error, "Refused stored grain state {StateName} of {GrainId}: {Reason}")]
    public static partial void RefusedStoredState(ILogger logger, string stateName, GrainId grainId, string reason);

    [LoggerMessage(9, LogLevel.Information, "Stored grain state {StateName} of {GrainId} was erased (its data key destroyed by an erasure); reading it as no state")]
    public static partial void ReadErasedState(ILogger logger, string stateName, GrainId grainId);

    [LoggerMessage(10, LogLevel.Information, "Evicted the cached data keys of an erased scope on this silo")]
    public static partial void EvictedErasedScope(ILogger logger);
}
