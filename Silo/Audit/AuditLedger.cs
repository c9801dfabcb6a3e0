using System.Text.Json;
using System.Text.Json.Serialization;
using Bastion.Storage;
using Npgsql;

namespace Bastion.Audit;

/// <summary>Reads the audit trail back: newest records for <c>GET /admin/audit</c>, JSON lines for a SIEM, erasures to re-destroy, and retention.</summary>
public sealed class AuditLedger(string connectionString, DataKeyStore dataKeys)
{
    /// <summary>The action recorded once a user's data key has been destroyed (target: the user's pseudonym).</summary>
    public const string ErasureAction = "user.erase";

    /// <summary>The newest <paramref name="limit"/> records, newest first.</summary>
    public async Task<IReadOnlyList<(long Seq, AuditRecord Record)>> ReadNewestAsync(int limit, CancellationToken cancellationToken)
    {
        var records = new List<(long, AuditRecord)>();
        await foreach (var (seq, _, record) in ReadAsync("ORDER BY seq DESC LIMIT @limit", command => command.Parameters.AddWithValue("limit", limit), cancellationToken))
        {
            records.Add((seq, record));
        }

        return records;
    }

    /// <summary>Writes every record at or after <paramref name="since"/> as one JSON object per line, oldest first.</summary>
    public async Task<long> ExportAsync(DateTimeOffset since, TextWriter output, CancellationToken cancellationToken)
    {
        long count = 0;
        await foreach (var (seq, hash, record) in ReadAsync("WHERE recorded_at >= @since ORDER BY seq", command => command.Parameters.AddWithValue("since", since), cancellationToken))
        {
            var line = new ExportedRecord(seq, Convert.ToHexStringLower(hash), record.Time, record.Action, record.Actor, record.Target, record.Outcome, record.Detail);
            await output.WriteLineAsync(JsonSerializer.Serialize(line, AuditJsonContext.Default.ExportedRecord));
            count++;
        }

        return count;
    }

    /// <summary>The data-key scopes of every user whose erasure the trail records as done (to destroy again after a key-store restore).</summary>
    public async Task<IReadOnlyList<string>> ReadErasedScopesAsync(CancellationToken cancellationToken)
    {
        var scopes = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var (_, _, record) in ReadAsync("ORDER BY seq", _ => { }, cancellationToken))
        {
            if (record.Action == ErasureAction && record.Target is { } pseudonym && record.Outcome == "ok")
            {
                scopes.Add(DataKeyScope.ForUser(pseudonym));
            }
        }

        return [.. scopes];
    }

    /// <summary>
    /// Deletes, as the schema owner, the records older than <paramref name="cutoff"/> up to the newest seal among them, so that
    /// what is left starts right after a seal (its anchor). Seals are kept. Returns how many records were deleted.
    /// </summary>
    public static async Task<long> PruneAsync(string ownerConnectionString, DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(ownerConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await AuditTrail.LockAsync(connection, transaction, cancellationToken);
        await using var prune = new NpgsqlCommand(
            """
            DELETE FROM bastion_audit WHERE seq <= (
                SELECT max(s.seq) FROM bastion_audit_seals s JOIN bastion_audit a ON a.seq = s.seq WHERE a.recorded_at < @cutoff)
            """,
            connection,
            transaction);
        prune.Parameters.AddWithValue("cutoff", cutoff);
        var deleted = await prune.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return deleted;
    }

    private async IAsyncEnumerable<(long Seq, byte[] Hash, AuditRecord Record)> ReadAsync(
        string clause, Action<NpgsqlCommand> bind, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT seq, hash, payload FROM bastion_audit " + clause, connection);
        bind(command);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var seq = reader.GetInt64(0);
            var payload = reader.GetFieldValue<byte[]>(2);
            var dataKey = await dataKeys.FindAsync(AuditChain.DataKeyScope, AuditChain.DataKeyOf(payload), cancellationToken);
            yield return (seq, reader.GetFieldValue<byte[]>(1), AuditChain.Open(payload, seq, dataKey));
        }
    }
}

/// <summary>One line of <c>audit export</c>: the record with its place in the chain.</summary>
internal sealed record ExportedRecord(
    [property: JsonPropertyName("seq")] long Seq,
    [property: JsonPropertyName("hash")] string Hash,
    [property: JsonPropertyName("time")] DateTimeOffset Time,
    [property: JsonPropertyName("action")] string Action,
    [property: JsonPropertyName("actor")] string? Actor,
    [property: JsonPropertyName("target")] string? Target,
    [property: JsonPropertyName("outcome")] string Outcome,
    [property: JsonPropertyName("detail")] IReadOnlyDictionary<string, string>? Detail);
