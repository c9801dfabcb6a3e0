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

    public DataKeyStore(string connectionString, IKeyProvider keys)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        _connectionString = connectionString;
        _keys = keys;
    }

    /// <summary>The live data key of <paramref name="scope"/>, created (and stored wrapped) on first use.</summary>
    public async Task<DataKey> GetCurrentAsync(string scope, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(("current", scope), out DataKey? cached) && cached is not null)
        {
            return cached;
        }

        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        var key = await ReadLiveAsync(connection, scope, cancellationToken);
        if (key is null)
        {
            var kek = _keys.CurrentKek;
            var id = Guid.CreateVersion7();
            var bytes = RandomNumberGenerator.GetBytes(EnvelopeCipher.KeySize);
            await using (var insert = new NpgsqlCommand(
                "INSERT INTO bastion_keys.bastion_data_keys (scope, dek_id, kek_version, wrapped) VALUES (@scope, @id, @kek, @wrapped) " +
                "ON CONFLICT (scope) WHERE destroyed_at IS NULL DO NOTHING",
                connection))
            {
                insert.Parameters.AddWithValue("scope", scope);
                insert.Parameters.AddWithValue("id", id);
                insert.Parameters.AddWithValue("kek", kek.Version);
                insert.Parameters.AddWithValue("wrapped", Wrap(bytes, scope, id, kek));
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }

            CryptographicOperations.ZeroMemory(bytes);

            // Another silo may have won the race; its key is the scope's key.
            key = await ReadLiveAsync(connection, scope, cancellationToken)
                ?? throw new DataKeyUnavailableException($"No live data key for scope {scope} after creating one.");
        }

        Remember(("current", scope), key);
        Remember((scope, key.Id), key);
        return key;
    }

    /// <summary>The data key <paramref name="id"/> of <paramref name="scope"/>, live or older.</summary>
    /// <exception cref="DataKeyUnavailableException">No such key in that scope, destroyed, or its KEK version is unknown.</exception>
    public async Task<DataKey> FindAsync(string scope, Guid id, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue((scope, id), out DataKey? cached) && cached is not null)
        {
            return cached;
        }

        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT kek_version, wrapped FROM bastion_keys.bastion_data_keys WHERE scope = @scope AND dek_id = @id", connection);
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
            throw new DataKeyUnavailableException($"Data key {id} of scope {scope} was destroyed; the state it protected is erased.");
        }

        var key = Unwrap(scope, id, reader.GetInt32(0), (byte[])reader.GetValue(1));
        Remember((scope, id), key);
        return key;
    }

    /// <summary>
    /// Destroys every data key of <paramref name="scope"/> (erasure): the rows stay, the wrapped
    /// bytes go. Other silos may serve cached keys until their cache entries expire.
    /// </summary>
    public async Task DestroyAsync(string scope, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "UPDATE bastion_keys.bastion_data_keys SET wrapped = NULL, destroyed_at = now() WHERE scope = @scope AND destroyed_at IS NULL", connection);
        command.Parameters.AddWithValue("scope", scope);
        await command.ExecuteNonQueryAsync(cancellationToken);

        // A bounded cache cannot be listed by scope; drop it all, keys are re-read on demand.
        _cache.Clear();
    }

    public void Dispose() => _cache.Dispose();

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

    private void Remember(object cacheKey, DataKey key) =>
        _cache.Set(cacheKey, key, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = CacheLifetime });

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
