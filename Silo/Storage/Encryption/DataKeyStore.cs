using System.Security.Cryptography;
using System.Text;
using Bastion.Security;
using Microsoft.Extensions.Caching.Memory;
using Npgsql;

namespace Bastion.Storage;

/// <summary>
/// Data keys (DEKs) per scope, stored wrapped under a KEK version in
/// <c>bastion_keys.bastion_data_keys</c>, never beside the state they protect; unwrapped keys are
/// cached in memory, bounded by count.
/// </summary>
/// <remarks>
/// Wrapping is AES-256-GCM under the KEK: <c>nonce(12) ‖ ciphertext(32) ‖ tag(16)</c>, with the
/// scope, DEK id and KEK version as associated data, so a wrapped key moved to another scope or
/// relabelled with another version does not unwrap. AES-GCM rather than AES-KW because .NET has no
/// AES-KW and GCM is already the primitive of the envelopes.
/// </remarks>
public sealed class DataKeyStore : IDisposable
{
    private const int CacheLimit = 10_000;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private static readonly TimeSpan CacheLifetime = TimeSpan.FromMinutes(10);

    private readonly string _connectionString;
    private readonly IKeyProvider _keys;
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = CacheLimit });

    // Evictions and the caching of a key read from the store take turns, and a key read before an eviction is not
    // cached after it: a lookup racing an erasure must not put the destroyed key back.
    private readonly Lock _cacheGate = new();
    private long _evictions;

    public DataKeyStore(string connectionString, IKeyProvider keys)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        _connectionString = connectionString;
        _keys = keys;
    }

    /// <summary>The live data key of <paramref name="scope"/>, created (and stored wrapped) on first use.</summary>
    /// <remarks>
    /// Lazy re-wrap: when the live key is wrapped with an older KEK version than the current one, its
    /// row is re-wrapped with the current KEK first (<see cref="RewrapAsync(NpgsqlConnection, string, DataKey, VersionedSecret, CancellationToken)"/>),
    /// so every state write moves its scope's key forward.
    /// </remarks>
    /// <exception cref="KeysUnavailableException">The key store cannot be reached.</exception>
    public Task<DataKey> GetCurrentAsync(string scope, CancellationToken cancellationToken) =>
        FailClosedAsync(() => GetCurrentCoreAsync(scope, cancellationToken));

    private async Task<DataKey> GetCurrentCoreAsync(string scope, CancellationToken cancellationToken)
    {
        var kek = _keys.CurrentKek;
        if (_cache.TryGetValue(("current", scope), out DataKey? cached) && cached is not null && !cached.IsRetired && cached.KekVersion >= kek.Version)
        {
            return cached;
        }

        var evictions = Interlocked.Read(ref _evictions);

        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        var key = await ReadLiveAsync(connection, scope, cancellationToken);
        if (key is null)
        {
            var id = Guid.CreateVersion7();
            var bytes = RandomNumberGenerator.GetBytes(EnvelopeCipher.KeySize);
            await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
            {
                // Under the scope's lock, so that an erasure and a first write cannot pass each other: while the
                // scope's erasure is open, no new key is made (a stale activation must not write the state again).
                await LockScopeAsync(connection, transaction, scope, cancellationToken);
                await using var insert = new NpgsqlCommand(
                    "INSERT INTO bastion_keys.bastion_data_keys (scope, dek_id, kek_version, wrapped) SELECT @scope, @id, @kek, @wrapped " +
                    "WHERE NOT EXISTS (SELECT 1 FROM bastion_keys.bastion_erasures WHERE scope = @scope AND completed_at IS NULL) " +
                    "ON CONFLICT (scope) WHERE destroyed_at IS NULL DO NOTHING",
                    connection,
                    transaction);
                insert.Parameters.AddWithValue("scope", scope);
                insert.Parameters.AddWithValue("id", id);
                insert.Parameters.AddWithValue("kek", kek.Version);
                insert.Parameters.AddWithValue("wrapped", Wrap(bytes, scope, id, kek));
                await insert.ExecuteNonQueryAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }

            CryptographicOperations.ZeroMemory(bytes);

            // Another silo may have won the race; its key is the scope's key.
            key = await ReadLiveAsync(connection, scope, cancellationToken)
                ?? throw new DataKeyErasedException($"Scope {scope} is being erased: no data key is made for it until the erasure completes.");
        }

        if (key.KekVersion < kek.Version)
        {
            // Whether this silo or another (or the re-wrap job) moved it, the row now holds the key under a newer version.
            await RewrapAsync(connection, scope, key, kek, cancellationToken);
            var rewrapped = await ReadLiveAsync(connection, scope, cancellationToken);
            key.Retire();
            key = rewrapped ?? throw new DataKeyUnavailableException($"The live data key of scope {scope} was destroyed while it was re-wrapped.");
        }

        // Each cache entry owns its copy, so that one entry's eviction zeroes nothing another entry still holds.
        _ = Remember(evictions, ("current", scope), key);
        var copy = key.Copy();
        if (!Remember(evictions, (scope, key.Id), copy))
        {
            copy.Retire();
        }

        return key;
    }

    /// <summary>The data key <paramref name="id"/> of <paramref name="scope"/>, live or older.</summary>
    /// <exception cref="DataKeyUnavailableException">No such key in that scope, destroyed, or its KEK version is unknown.</exception>
    /// <exception cref="KeysUnavailableException">The key store cannot be reached.</exception>
    public Task<DataKey> FindAsync(string scope, Guid id, CancellationToken cancellationToken) =>
        FailClosedAsync(() => FindCoreAsync(scope, id, cancellationToken));

    private async Task<DataKey> FindCoreAsync(string scope, Guid id, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue((scope, id), out DataKey? cached) && cached is not null && !cached.IsRetired)
        {
            return cached;
        }

        var evictions = Interlocked.Read(ref _evictions);

        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT k.kek_version, k.wrapped, EXISTS (SELECT 1 FROM bastion_keys.bastion_erasures e WHERE e.scope = k.scope) " +
            "FROM bastion_keys.bastion_data_keys k WHERE k.scope = @scope AND k.dek_id = @id", connection);
        command.Parameters.AddWithValue("scope", scope);
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new DataKeyUnavailableException(
                $"Data key {id} does not belong to scope {scope}: the payload was sealed for another scope (copied from another grain) or its key is gone.");
        }

        if (await reader.IsDBNullAsync(1, cancellationToken))
        {
            var message = $"Data key {id} of scope {scope} was destroyed; the state it protected is erased.";
            throw reader.GetBoolean(2) ? new DataKeyErasedException(message) : new DataKeyUnavailableException(message);
        }

        var key = Unwrap(scope, id, reader.GetInt32(0), (byte[])reader.GetValue(1));
        _ = Remember(evictions, (scope, id), key);
        return key;
    }

    /// <summary>
    /// Destroys every data key of <paramref name="scope"/>: the rows stay, the wrapped bytes go. This silo's
    /// cached copies are zeroed at once; other silos' are not (see <see cref="BeginErasureAsync"/> for erasure).
    /// </summary>
    public async Task DestroyAsync(string scope, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "UPDATE bastion_keys.bastion_data_keys SET wrapped = NULL, destroyed_at = now() WHERE scope = @scope AND destroyed_at IS NULL", connection);
        command.Parameters.AddWithValue("scope", scope);
        await command.ExecuteNonQueryAsync(cancellationToken);
        Evict(scope);
    }

    /// <summary>
    /// The first, durable step of an erasure: in one transaction, records (or reopens) the erasure of
    /// <paramref name="scope"/> with the API key ids that are to be unbound, and destroys the scope's data keys.
    /// From its commit on, every stored copy of the scope's state is unreadable, and no new key is made for the
    /// scope until <see cref="CompleteErasureAsync"/>. This silo's cached copies are zeroed at once.
    /// </summary>
    /// <returns>Every API key id recorded for the open erasure, from this call and earlier attempts.</returns>
    public async Task<IReadOnlyList<string>> BeginErasureAsync(string scope, IReadOnlyCollection<string> apiKeyIds, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        string[] recorded;
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await LockScopeAsync(connection, transaction, scope, cancellationToken);
            await using (var record = new NpgsqlCommand(
                "INSERT INTO bastion_keys.bastion_erasures AS e (scope, api_key_ids) VALUES (@scope, @ids) " +
                "ON CONFLICT (scope) DO UPDATE SET " +
                "api_key_ids = CASE WHEN e.completed_at IS NULL THEN ARRAY(SELECT DISTINCT unnest(e.api_key_ids || EXCLUDED.api_key_ids) ORDER BY 1) ELSE EXCLUDED.api_key_ids END, " +
                "requested_at = CASE WHEN e.completed_at IS NULL THEN e.requested_at ELSE now() END, " +
                "completed_at = NULL " +
                "RETURNING api_key_ids",
                connection,
                transaction))
            {
                record.Parameters.AddWithValue("scope", scope);
                record.Parameters.AddWithValue("ids", apiKeyIds.ToArray());
                recorded = (string[])(await record.ExecuteScalarAsync(cancellationToken))!;
            }

            await using (var destroy = new NpgsqlCommand(
                "UPDATE bastion_keys.bastion_data_keys SET wrapped = NULL, destroyed_at = now() WHERE scope = @scope AND destroyed_at IS NULL",
                connection,
                transaction))
            {
                destroy.Parameters.AddWithValue("scope", scope);
                await destroy.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
        }

        Evict(scope);
        return recorded;
    }

    /// <summary>The API key ids of <paramref name="scope"/>'s open erasure, or null when none is open.</summary>
    public async Task<IReadOnlyList<string>?> FindOpenErasureAsync(string scope, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT api_key_ids FROM bastion_keys.bastion_erasures WHERE scope = @scope AND completed_at IS NULL", connection);
        command.Parameters.AddWithValue("scope", scope);
        return await command.ExecuteScalarAsync(cancellationToken) as string[];
    }

    /// <summary>Marks <paramref name="scope"/>'s erasure complete: nothing of it is left to remove. The record stays.</summary>
    public async Task CompleteErasureAsync(string scope, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "UPDATE bastion_keys.bastion_erasures SET completed_at = now() WHERE scope = @scope AND completed_at IS NULL", connection);
        command.Parameters.AddWithValue("scope", scope);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Drops this silo's cached keys of <paramref name="scope"/> and zeroes them (at once, or when the operations
    /// using them end). The next use reads the key store again.
    /// </summary>
    public void Evict(string scope) =>
        EvictWhere(key => key is ValueTuple<string, string> current ? current.Item2 == scope : key is ValueTuple<string, Guid> byId && byId.Item1 == scope);

    /// <summary>Drops (and zeroes) every unwrapped key held in memory; each is read and unwrapped again on its next use.</summary>
    public void ForgetCachedKeys() => EvictWhere(_ => true);

    /// <summary>
    /// Re-wraps every live data key wrapped with a KEK version older than the current one, in pages,
    /// reporting (done, total) after each key. Safe beside running silos: each row moves with a
    /// conditional UPDATE, and a row that a lazy re-wrap moved first counts as done.
    /// </summary>
    /// <returns>How many keys were on older versions when the run began.</returns>
    /// <exception cref="DataKeyUnavailableException">A key is wrapped with a KEK version the provider does not have.</exception>
    public async Task<long> RewrapAllAsync(Action<long, long>? progress, CancellationToken cancellationToken)
    {
        const int pageSize = 200;
        var kek = _keys.CurrentKek;
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        long total;
        await using (var count = new NpgsqlCommand(
            "SELECT count(*) FROM bastion_keys.bastion_data_keys WHERE destroyed_at IS NULL AND kek_version < @kek", connection))
        {
            count.Parameters.AddWithValue("kek", kek.Version);
            total = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
        }

        long done = 0;
        var after = Guid.Empty;
        progress?.Invoke(done, total);
        while (true)
        {
            var page = new List<(string Scope, Guid Id, int KekVersion, byte[] Wrapped)>(pageSize);
            await using (var select = new NpgsqlCommand(
                "SELECT scope, dek_id, kek_version, wrapped FROM bastion_keys.bastion_data_keys " +
                "WHERE destroyed_at IS NULL AND kek_version < @kek AND dek_id > @after ORDER BY dek_id LIMIT @limit",
                connection))
            {
                select.Parameters.AddWithValue("kek", kek.Version);
                select.Parameters.AddWithValue("after", after);
                select.Parameters.AddWithValue("limit", pageSize);
                await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    page.Add((reader.GetString(0), reader.GetGuid(1), reader.GetInt32(2), (byte[])reader.GetValue(3)));
                }
            }

            if (page.Count == 0)
            {
                return total;
            }

            foreach (var row in page)
            {
                var key = Unwrap(row.Scope, row.Id, row.KekVersion, row.Wrapped);
                await RewrapAsync(connection, row.Scope, key, kek, cancellationToken);
                CryptographicOperations.ZeroMemory(key.Key);
                progress?.Invoke(++done, total);
            }

            after = page[^1].Id;
        }
    }

    /// <summary>Live data keys per KEK version that wraps them.</summary>
    public async Task<IReadOnlyDictionary<int, long>> CountByKekVersionAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT kek_version, count(*) FROM bastion_keys.bastion_data_keys WHERE destroyed_at IS NULL GROUP BY kek_version", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var counts = new Dictionary<int, long>();
        while (await reader.ReadAsync(cancellationToken))
        {
            counts[reader.GetInt32(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    public void Dispose()
    {
        ForgetCachedKeys();
        _cache.Dispose();
    }

    // Eviction callbacks run later, on the thread pool; an eviction asked for is done before this returns.
    private void EvictWhere(Func<object, bool> match)
    {
        lock (_cacheGate)
        {
            Interlocked.Increment(ref _evictions);
            foreach (var cacheKey in _cache.Keys.Where(match).ToList())
            {
                if (_cache.TryGetValue(cacheKey, out DataKey? key))
                {
                    _cache.Remove(cacheKey);
                    key?.Retire();
                }
            }
        }
    }

    // A key store that cannot be reached (stopped, unreachable, shutting down) is an outage of keys, not an internal
    // error: like an unreadable Key Vault it fails closed as KeysUnavailableException, which the HTTP edge answers with a
    // retryable 503 keys-unavailable. StateVersions, in the same database, fails the same way.
    internal static async Task<T> FailClosedAsync<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (NpgsqlException exception) when (exception.IsTransient)
        {
            throw new KeysUnavailableException("The key store cannot be reached.", exception);
        }
    }

    // A transaction-scoped advisory lock on the scope: erasure and key creation for one scope take turns.
    private static async Task LockScopeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string scope, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended(@scope, 0))", connection, transaction);
        command.Parameters.AddWithValue("scope", scope);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    // Moves one row from the KEK version it was read with to kek. The condition on the old version
    // makes concurrent re-wraps of the same row (two silos writing, or a write and the job) agree:
    // the first UPDATE wins, the others change nothing, and every wrapping holds the same key bytes.
    private static async Task<bool> RewrapAsync(NpgsqlConnection connection, string scope, DataKey key, VersionedSecret kek, CancellationToken cancellationToken)
    {
        await using var update = new NpgsqlCommand(
            "UPDATE bastion_keys.bastion_data_keys SET kek_version = @kek, wrapped = @wrapped " +
            "WHERE dek_id = @id AND scope = @scope AND kek_version = @old AND destroyed_at IS NULL",
            connection);
        update.Parameters.AddWithValue("kek", kek.Version);
        update.Parameters.AddWithValue("wrapped", Wrap(key.Key, scope, key.Id, kek));
        update.Parameters.AddWithValue("id", key.Id);
        update.Parameters.AddWithValue("scope", scope);
        update.Parameters.AddWithValue("old", key.KekVersion);
        return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    private async Task<DataKey?> ReadLiveAsync(NpgsqlConnection connection, string scope, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT dek_id, kek_version, wrapped FROM bastion_keys.bastion_data_keys WHERE scope = @scope AND destroyed_at IS NULL", connection);
        command.Parameters.AddWithValue("scope", scope);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? Unwrap(scope, reader.GetGuid(0), reader.GetInt32(1), (byte[])reader.GetValue(2))
            : null;
    }

    // An entry that expires or falls to the size bound has its key zeroed. One replaced by a concurrent lookup is
    // not: its caller may still be about to use it, and the same bytes stay in the cache anyway. Eviction on
    // erasure (Evict) zeroes what is cached at that moment itself.
    private bool Remember(long evictionsBeforeRead, object cacheKey, DataKey key)
    {
        lock (_cacheGate)
        {
            if (Interlocked.Read(ref _evictions) != evictionsBeforeRead)
            {
                return false;
            }

            _cache.Set(cacheKey, key, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = CacheLifetime }
                .RegisterPostEvictionCallback(static (_, value, reason, _) =>
                {
                    if (reason != EvictionReason.Replaced)
                    {
                        (value as DataKey)?.Retire();
                    }
                }));
            return true;
        }
    }

    private DataKey Unwrap(string scope, Guid id, int kekVersion, byte[] wrapped)
    {
        var kek = _keys.FindKek(kekVersion)
            ?? throw new DataKeyUnavailableException($"Data key {id} of scope {scope} is wrapped with KEK version {kekVersion}, which the key provider does not have.");
        if (wrapped.Length != NonceSize + EnvelopeCipher.KeySize + TagSize)
        {
            throw new DataKeyUnavailableException($"Data key {id} of scope {scope} is stored malformed ({wrapped.Length} bytes).");
        }

        var key = new byte[EnvelopeCipher.KeySize];
        using var aes = new AesGcm(kek.Key, TagSize);
        try
        {
            aes.Decrypt(wrapped.AsSpan(0, NonceSize), wrapped.AsSpan(NonceSize, EnvelopeCipher.KeySize), wrapped.AsSpan(NonceSize + EnvelopeCipher.KeySize), key, WrapAssociatedData(scope, id, kekVersion));
        }
        catch (AuthenticationTagMismatchException exception)
        {
            throw new DataKeyUnavailableException($"Data key {id} of scope {scope} does not unwrap under KEK version {kekVersion}.", exception);
        }

        return new DataKey(id, kekVersion, key);
    }

    private static byte[] Wrap(byte[] key, string scope, Guid id, VersionedSecret kek)
    {
        var wrapped = new byte[NonceSize + EnvelopeCipher.KeySize + TagSize];
        RandomNumberGenerator.Fill(wrapped.AsSpan(0, NonceSize));
        using var aes = new AesGcm(kek.Key, TagSize);
        aes.Encrypt(wrapped.AsSpan(0, NonceSize), key, wrapped.AsSpan(NonceSize, EnvelopeCipher.KeySize), wrapped.AsSpan(NonceSize + EnvelopeCipher.KeySize), WrapAssociatedData(scope, id, kek.Version));
        return wrapped;
    }

    private static byte[] WrapAssociatedData(string scope, Guid id, int kekVersion) =>
        Encoding.UTF8.GetBytes($"bastion-dek-v1\n{scope}\n{id:D}\n{kekVersion}");
}
