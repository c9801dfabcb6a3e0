using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Bastion.Diagnostics;
using Bastion.Security;
using Bastion.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Bastion.Audit;

/// <summary>
/// Writes the audit trail: records queue here and are appended in batches, each batch in one transaction that holds
/// the trail's advisory lock, reads the chain's head, encrypts and hashes the records onto it and seals it when a seal
/// is due. Silos write one chain between them; the lock orders their batches. Also checks, every
/// <see cref="AuditOptions.VerifyInterval"/>, the records and seals added since its last check.
/// </summary>
public sealed partial class AuditTrail : IAuditTrail, IHostedService, IAsyncDisposable
{
    // "bastion.audit" folded into a 64-bit advisory lock key, distinct from the migrator's.
    internal const long LockKey = 0x6273742e61756474;

    private const int MaxBatch = 256;

    private readonly string _connectionString;
    private readonly DataKeyStore _dataKeys;
    private readonly IKeyProvider _keys;
    private readonly AuditOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Pending> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Counter<long> _written;
    private readonly AuditVerifier.Progress _verified = new();
    private Task? _writer;
    private Task? _checker;
    private volatile int _intact = 1;
    private int _disposed;
    private long _oldestUnsealedTicks; // UTC ticks; 0 when every record is sealed
    private volatile bool _sealWatched;

    public AuditTrail(string connectionString, DataKeyStore dataKeys, IKeyProvider keys, AuditOptions options, TimeProvider time, ILogger<AuditTrail> logger, IMeterFactory? meters = null)
    {
        _connectionString = connectionString;
        _dataKeys = dataKeys;
        _keys = keys;
        _options = options;
        _time = time;
        _logger = logger;
        _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(options.QueueCapacity) { SingleReader = true });
        // A command run outside a silo has no meter factory: its instruments go nowhere.
        var meter = meters?.Create(BastionMetrics.MeterName) ?? new Meter(BastionMetrics.MeterName);
        _written = meter.CreateCounter<long>("bastion_audit_records", description: "Audit records, by result: written, or failed (the database or keys were unavailable).");
        meter.CreateObservableGauge("bastion_audit_chain_intact", () => _intact, description: "1 while every audit record and seal this silo has checked verifies; 0 once one does not (see `audit verify`).");
        meter.CreateObservableGauge(
            "bastion_audit_unsealed_seconds",
            () => _sealWatched ? [new Measurement<double>(UnsealedSeconds())] : Array.Empty<Measurement<double>>(),
            "s",
            "Age of the oldest audit record no seal covers yet (0 when all are sealed): above SealInterval, sealing has stopped.");
    }

    public Task RecordAsync(AuditRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var pending = new Pending(record, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        return WriteAndWaitAsync(pending);
    }

    public async ValueTask EnqueueAsync(AuditRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        try
        {
            await _queue.Writer.WriteAsync(new Pending(record, null));
        }
        catch (ChannelClosedException closed)
        {
            throw new AuditUnavailableException("The audit trail has stopped.", closed);
        }
    }

    /// <summary>Starts the writer and the periodic check.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _writer ??= Task.Run(WriteLoopAsync, CancellationToken.None);
        _checker ??= Task.Run(CheckLoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>Stops taking records and writes every queued one, unless <paramref name="cancellationToken"/> ends the wait first (a forced stop).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        if (_writer is { } writer)
        {
            await writer.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_checker is { } checker)
        {
            await checker.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    // The container may dispose the one instance once per registration (the trail, IAuditTrail, the hosted service).
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await StopAsync(CancellationToken.None);
            _stopping.Dispose();
        }
    }

    /// <summary>Records one event durably from a command run outside a silo (a writer of its own, started and stopped around it).</summary>
    public static async Task RecordOnceAsync(
        string connectionString, DataKeyStore dataKeys, IKeyProvider keys, AuditOptions options, ILoggerFactory loggerFactory, AuditRecord record)
    {
        await using var trail = new AuditTrail(connectionString, dataKeys, keys, options, TimeProvider.System, loggerFactory.CreateLogger<AuditTrail>());
        await trail.StartAsync(CancellationToken.None);
        await trail.RecordAsync(record);
    }

    /// <summary>Writes a seal now if one is due (records added since the last seal, and the interval passed); for the periodic tick and tests.</summary>
    public async Task SealIfDueAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await LockAsync(connection, transaction, cancellationToken);
        var (head, headHash) = await ReadHeadAsync(connection, transaction, cancellationToken);
        await SealIfDueAsync(connection, transaction, head, headHash, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private async Task WriteAndWaitAsync(Pending pending)
    {
        try
        {
            await _queue.Writer.WriteAsync(pending);
        }
        catch (ChannelClosedException closed)
        {
            throw new AuditUnavailableException("The audit trail has stopped.", closed);
        }

        await pending.Done!.Task;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<Pending>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var pending))
            {
                batch.Add(pending);
            }

            await WriteBatchAsync(batch);
            batch.Clear();
        }
    }

    private async Task WriteBatchAsync(List<Pending> batch)
    {
        Exception? failure = null;
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            try
            {
                await AppendAsync(batch, CancellationToken.None);
                _written.Add(batch.Count, new KeyValuePair<string, object?>("result", "written"));
                foreach (var pending in batch)
                {
                    pending.Done?.TrySetResult();
                }

                return;
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                // Whatever went wrong, the loop goes on: a writer that died would leave every later caller waiting.
                failure = exception;
                if (attempt == 3 || exception is not (NpgsqlException or KeysUnavailableException or DataKeyUnavailableException or TimeoutException))
                {
                    break;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt));
            }
        }

        // Waiters learn it (an admin change is then answered with an error, not reported as audited);
        // queued metadata is lost, counted and logged.
        _written.Add(batch.Count, new KeyValuePair<string, object?>("result", "failed"));
        LogWriteFailed(_logger, batch.Count, failure!.GetType().Name);
        foreach (var pending in batch)
        {
            pending.Done?.TrySetException(new AuditUnavailableException("The audit trail cannot be written.", failure));
        }
    }

    private async Task AppendAsync(List<Pending> batch, CancellationToken cancellationToken)
    {
        var dataKey = await _dataKeys.GetCurrentAsync(AuditChain.DataKeyScope, cancellationToken);
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await LockAsync(connection, transaction, cancellationToken);
        var (head, previous) = await ReadHeadAsync(connection, transaction, cancellationToken);

        var seqs = new long[batch.Count];
        var times = new DateTime[batch.Count];
        var payloads = new byte[batch.Count][];
        var previousHashes = new byte[batch.Count][];
        var hashes = new byte[batch.Count][];
        for (var i = 0; i < batch.Count; i++)
        {
            var seq = head + 1 + i;
            var time = AuditChain.ToStoredPrecision(batch[i].Record.Time);
            seqs[i] = seq;
            times[i] = time.UtcDateTime;
            payloads[i] = AuditChain.Seal(batch[i].Record, seq, dataKey);
            previousHashes[i] = previous;
            hashes[i] = previous = AuditChain.Hash(previous, seq, time, payloads[i]);
        }

        await using (var insert = new NpgsqlCommand(
            "INSERT INTO bastion_audit (seq, recorded_at, payload, prev_hash, hash) SELECT * FROM unnest(@seq, @at, @payload, @prev, @hash)",
            connection,
            transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter("seq", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = seqs });
            insert.Parameters.Add(new NpgsqlParameter("at", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = times });
            insert.Parameters.Add(new NpgsqlParameter("payload", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = payloads });
            insert.Parameters.Add(new NpgsqlParameter("prev", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = previousHashes });
            insert.Parameters.Add(new NpgsqlParameter("hash", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = hashes });
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        await SealIfDueAsync(connection, transaction, seqs[^1], hashes[^1], cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private async Task SealIfDueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long head, byte[] headHash, CancellationToken cancellationToken)
    {
        long sealedSeq = 0;
        DateTimeOffset? sealedAt = null;
        await using (var last = new NpgsqlCommand("SELECT seq, sealed_at FROM bastion_audit_seals ORDER BY seq DESC LIMIT 1", connection, transaction))
        await using (var reader = await last.ExecuteReaderAsync(cancellationToken))
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                sealedSeq = reader.GetInt64(0);
                sealedAt = reader.GetFieldValue<DateTimeOffset>(1);
            }
        }

        var now = AuditChain.ToStoredPrecision(_time.GetUtcNow());
        var due = head > sealedSeq && (head - sealedSeq >= _options.SealEveryRecords || sealedAt is null || now - sealedAt >= _options.SealInterval);
        if (!due)
        {
            return;
        }

        var key = _keys.CurrentAuditSealKey;
        await using var seal = new NpgsqlCommand(
            "INSERT INTO bastion_audit_seals (seq, hash, sealed_at, key_version, mac) VALUES (@seq, @hash, @at, @version, @mac)", connection, transaction);
        seal.Parameters.AddWithValue("seq", head);
        seal.Parameters.AddWithValue("hash", headHash);
        seal.Parameters.AddWithValue("at", now);
        seal.Parameters.AddWithValue("version", key.Version);
        seal.Parameters.AddWithValue("mac", AuditChain.SealMac(key.Key, head, headHash, now));
        await seal.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task CheckLoopAsync()
    {
        var interval = _options.SealInterval < _options.VerifyInterval ? _options.SealInterval : _options.VerifyInterval;
        using var timer = new PeriodicTimer(interval, _time);
        var lastVerify = DateTimeOffset.MinValue;
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                try
                {
                    await SealIfDueAsync(_stopping.Token);
                    await WatchSealsAsync(_stopping.Token);
                    if (_time.GetUtcNow() - lastVerify >= _options.VerifyInterval)
                    {
                        lastVerify = _time.GetUtcNow();
                        await CheckAsync(_stopping.Token);
                    }
                }
                catch (Exception exception) when (exception is NpgsqlException or KeysUnavailableException or TimeoutException)
                {
                    LogCheckFailed(_logger, exception.GetType().Name);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>Verifies the records and seals added since the last check; a break sets <c>bastion_audit_chain_intact</c> to 0 for good.</summary>
    public async Task<AuditVerification> CheckAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        var result = await AuditVerifier.VerifyAsync(connection, _keys, _verified, cancellationToken);
        if (!result.Intact)
        {
            _intact = 0;
            LogChainBroken(_logger, result.BrokenAt, result.Problem);
        }

        return result;
    }

    // For the unsealed-age gauge: when the oldest record after the newest seal was recorded.
    private async Task WatchSealsAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT min(recorded_at) FROM bastion_audit WHERE seq > (SELECT coalesce(max(seq), 0) FROM bastion_audit_seals)", connection);
        Interlocked.Exchange(ref _oldestUnsealedTicks, await command.ExecuteScalarAsync(cancellationToken) is DateTime oldest ? oldest.Ticks : 0);
        _sealWatched = true;
    }

    private double UnsealedSeconds() =>
        Interlocked.Read(ref _oldestUnsealedTicks) is var ticks and > 0 ? Math.Max(0, (_time.GetUtcNow().UtcTicks - ticks) / (double)TimeSpan.TicksPerSecond) : 0;

    internal static async Task LockAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({LockKey})", connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    // The head is the newest record, or, when retention left none, the newest seal (whose hash the next record continues).
    private static async Task<(long Seq, byte[] Hash)> ReadHeadAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "(SELECT seq, hash FROM bastion_audit ORDER BY seq DESC LIMIT 1) UNION ALL (SELECT seq, hash FROM bastion_audit_seals ORDER BY seq DESC LIMIT 1) " +
            "ORDER BY seq DESC LIMIT 1",
            connection,
            transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetInt64(0), reader.GetFieldValue<byte[]>(1)) : (0, AuditChain.Genesis.ToArray());
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "AUDIT the audit trail could not write {Count} records ({Failure}); callers waiting for them got an error")]
    private static partial void LogWriteFailed(ILogger logger, int count, string failure);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The audit trail's periodic seal or check failed ({Failure}); it runs again at the next interval")]
    private static partial void LogCheckFailed(ILogger logger, string failure);

    [LoggerMessage(Level = LogLevel.Critical, Message = "AUDIT the audit chain is broken at record {Seq}: {Problem}. Run `audit verify` and follow deploy/incident-response.md")]
    private static partial void LogChainBroken(ILogger logger, long? seq, string? problem);

    private sealed record Pending(AuditRecord Record, TaskCompletionSource? Done);
}
