using System.Security.Cryptography;
using Bastion.Security;
using Npgsql;

namespace Bastion.Storage;

/// <summary>
/// The committed version of every sealed grain state, in the key store (<c>bastion_state_versions</c>), so that a row
/// put back in the state database from an older copy is refused (see <see cref="EncryptedGrainStorage"/>). A state is
/// named by the SHA-256 of its identity bytes.
/// </summary>
public sealed class StateVersions(string keyStoreConnectionString)
{
    // Recording a version does not wait for the key store's WAL flush, which halves what it adds to every state write.
    // A crash of the key-store server can lose the last few hundred milliseconds of versions; each state they belong
    // to can then be rolled back by one write. Data keys are written through DataKeyStore's own, synchronous, pool.
    private readonly string _connectionString = new NpgsqlConnectionStringBuilder(keyStoreConnectionString)
    {
        Options = $"{new NpgsqlConnectionStringBuilder(keyStoreConnectionString).Options} -c synchronous_commit=off".Trim(),
    }.ConnectionString;

    /// <summary>The version last committed for the state, or null when it was never written.</summary>
    /// <exception cref="KeysUnavailableException">The key store cannot be reached (a transient failure): the read fails closed.</exception>
    public Task<int?> FindAsync(ReadOnlyMemory<byte> identity) =>
        ExecuteAsync("SELECT version FROM bastion_keys.bastion_state_versions WHERE state = @state", identity, version: null);

    /// <summary>Records that the state was committed as <paramref name="version"/> (never moves a version back).</summary>
    /// <exception cref="KeysUnavailableException">The key store cannot be reached.</exception>
    public Task AdvanceAsync(ReadOnlyMemory<byte> identity, int version) =>
        ExecuteAsync(
            "INSERT INTO bastion_keys.bastion_state_versions AS v (state, version) VALUES (@state, @version) " +
            "ON CONFLICT (state) DO UPDATE SET version = greatest(v.version, excluded.version)", identity, version);

    /// <summary>
    /// Forgets every recorded version, as the key store's owner: the step after restoring the state database from a
    /// backup on purpose, which would otherwise be refused row by row as put back. Erased users stay erased (their
    /// data keys are gone); each state is protected again from its next write.
    /// </summary>
    public static async Task ForgetAllAsync(string keyStoreOwnerConnectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(keyStoreOwnerConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("TRUNCATE bastion_keys.bastion_state_versions", connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private Task<int?> ExecuteAsync(string sql, ReadOnlyMemory<byte> identity, int? version) => DataKeyStore.FailClosedAsync(async () =>
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("state", SHA256.HashData(identity.Span));
        if (version is { } value)
        {
            command.Parameters.AddWithValue("version", value);
        }

        return await command.ExecuteScalarAsync() as int?;
    });
}
