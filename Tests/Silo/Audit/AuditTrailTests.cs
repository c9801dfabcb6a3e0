using System.Text.Json;
using Bastion.Audit;
using Bastion.Security;
using Bastion.Storage;
using Bastion.Tests.Silo.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Bastion.Tests.Silo.Audit;

/// <summary>
/// The audit trail on a real PostgreSQL: records chain, seal, encrypt and read back; the runtime role cannot change or
/// delete them; each kind of tampering is named at the first broken record; a flood evicts nothing; two writers make one chain.
/// </summary>
[Collection("Postgres")]
public sealed class AuditTrailTests(PostgresFixture postgres) : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly string _keyringDirectory = Directory.CreateTempSubdirectory("bastion-audit-keys-").FullName;

    public void Dispose() => Directory.Delete(_keyringDirectory, recursive: true);

    [Fact]
    public async Task Records_ChainSealAndReadBack_EncryptedAtRest()
    {
        await using var env = await TrailAsync(sealEvery: 4);
        for (var i = 1; i <= 10; i++)
        {
            await env.Trail.RecordAsync(Record(i, "user.suspend", target: "pseudonym-" + i));
        }

        await env.Trail.EnqueueAsync(Record(11, "inference"));
        await env.Trail.StopAsync(CancellationToken.None);

        var result = await env.VerifyAsync();
        Assert.True(result.Intact, result.Problem);
        Assert.Equal((1L, 11L, 11L), (result.FirstSeq!.Value, result.LastSeq!.Value, result.Records));
        Assert.Equal(3, result.Seals); // the first batch, then every 4 records: after records 1, 5 and 9 (one record per batch here)

        var newest = await env.Ledger.ReadNewestAsync(3, CancellationToken.None);
        Assert.Equal([11L, 10L, 9L], newest.Select(r => r.Seq));
        Assert.Equal(("user.suspend", "pseudonym-10", "admin-pseudonym", "200"), (newest[1].Record.Action, newest[1].Record.Target, newest[1].Record.Actor, newest[1].Record.Outcome));
        Assert.Equal(Start.AddSeconds(10), newest[1].Record.Time);

        // At rest the payload is an envelope: no action, pseudonym or JSON in the clear.
        var payload = await env.ScalarAsync<byte[]>("SELECT payload FROM bastion_audit WHERE seq = 10");
        Assert.Equal("BSTE"u8.ToArray(), payload[..4]);
        var text = System.Text.Encoding.UTF8.GetString(payload);
        Assert.DoesNotContain("pseudonym-10", text, StringComparison.Ordinal);
        Assert.DoesNotContain("suspend", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("UPDATE bastion_audit SET payload = payload WHERE seq = 1")]
    [InlineData("DELETE FROM bastion_audit WHERE seq = 1")]
    [InlineData("TRUNCATE bastion_audit")]
    [InlineData("UPDATE bastion_audit_seals SET mac = mac")]
    [InlineData("DELETE FROM bastion_audit_seals")]
    public async Task TheRuntimeRole_MayInsertAndRead_NeverChangeOrDelete(string statement)
    {
        await using var env = await TrailAsync(sealEvery: 1);
        await env.Trail.RecordAsync(Record(1, "user.create"));

        await using var connection = new NpgsqlConnection(env.Database.RuntimeConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(statement, connection);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        Assert.Equal(1L, await env.ScalarAsync<long>("SELECT count(*) FROM bastion_audit"));
    }

    /// <summary>What an attacker with the owner's rights (or a superuser) does to the table, and the record that must be named.</summary>
    public static TheoryData<string, string, long> Tampering => new()
    {
        { "a payload changed", "UPDATE bastion_audit SET payload = overlay(payload placing '\\x00'::bytea from 40 for 1) WHERE seq = 7", 7 },
        { "a time changed", "UPDATE bastion_audit SET recorded_at = recorded_at + interval '1 second' WHERE seq = 7", 7 },
        { "a record deleted", "DELETE FROM bastion_audit WHERE seq = 7", 7 },
        { "two records swapped", "UPDATE bastion_audit SET seq = 1000 WHERE seq = 6; UPDATE bastion_audit SET seq = 6 WHERE seq = 7; UPDATE bastion_audit SET seq = 7 WHERE seq = 1000", 6 },
        { "the sealed tail deleted", "DELETE FROM bastion_audit WHERE seq >= 9", 9 },
        { "the first records deleted", "DELETE FROM bastion_audit WHERE seq <= 2", 3 },
        // Hash recomputed to match the changed payload: the record is consistent in itself, so only the next record's link to it tells.
        {
            "a record replaced by a self-consistent one",
            "UPDATE bastion_audit SET payload = overlay(payload placing '\\x00'::bytea from 40 for 1) WHERE seq = 7; " +
            "UPDATE bastion_audit SET hash = sha256(prev_hash || int8send(seq) || int8send((extract(epoch from recorded_at) * 1000000)::bigint) || payload) WHERE seq = 7",
            8
        },
        { "a seal's MAC changed", "UPDATE bastion_audit_seals SET mac = sha256(mac) WHERE seq = 5", 5 },
        { "a seal moved", "UPDATE bastion_audit_seals SET seq = 6, hash = (SELECT hash FROM bastion_audit WHERE seq = 6) WHERE seq = 5", 6 },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task Tampering_IsNamedAtTheFirstBrokenRecord(string what, string statement, long brokenAt)
    {
        await using var env = await TrailAsync(sealEvery: 4);
        for (var i = 1; i <= 10; i++)
        {
            await env.Trail.RecordAsync(Record(i, "api-key.revoke"));
        }

        Assert.True((await env.VerifyAsync()).Intact);
        await env.AsOwnerAsync(statement);

        var result = await env.VerifyAsync();
        Assert.False(result.Intact, what);
        Assert.Equal(brokenAt, result.BrokenAt);
    }

    [Fact]
    public async Task AChainRewrittenWithoutTheSealKey_IsCaughtByTheNextSeal()
    {
        await using var env = await TrailAsync(sealEvery: 4);
        for (var i = 1; i <= 9; i++)
        {
            await env.Trail.RecordAsync(Record(i, "user.roles"));
        }

        // Record 6 replaced by record 5's payload, and every hash from 6 on recomputed: the chain itself is consistent again.
        await using (var connection = new NpgsqlConnection(env.Database.OwnerConnectionString))
        {
            await connection.OpenAsync();
            var rows = new List<(long Seq, DateTimeOffset At, byte[] Payload)>();
            await using (var read = new NpgsqlCommand("SELECT seq, recorded_at, payload FROM bastion_audit ORDER BY seq", connection))
            await using (var reader = await read.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    rows.Add((reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<byte[]>(2)));
                }
            }

            rows[5] = rows[5] with { Payload = rows[4].Payload };
            var previous = AuditChain.Genesis.ToArray();
            foreach (var row in rows)
            {
                var hash = AuditChain.Hash(previous, row.Seq, row.At, row.Payload);
                await using var write = new NpgsqlCommand("UPDATE bastion_audit SET payload = @p, prev_hash = @prev, hash = @h WHERE seq = @s", connection);
                write.Parameters.AddWithValue("p", row.Payload);
                write.Parameters.AddWithValue("prev", previous);
                write.Parameters.AddWithValue("h", hash);
                write.Parameters.AddWithValue("s", row.Seq);
                await write.ExecuteNonQueryAsync();
                previous = hash;
            }
        }

        var result = await env.VerifyAsync();
        Assert.False(result.Intact);
        Assert.Equal(9, result.BrokenAt); // seals after records 1, 5 and 9: the change lies between the last two
    }

    [Fact]
    public async Task ASealKeyRotation_KeepsOldSealsVerifying_AndNewSealsUseTheNewVersion()
    {
        await using var before = await TrailAsync(sealEvery: 1);
        await before.Trail.RecordAsync(Record(1, "user.create"));
        await before.Trail.RecordAsync(Record(2, "user.create"));

        DevelopmentKeyring.AddAuditSealKey(Path.Combine(_keyringDirectory, "keyring.json"));
        await using var after = await before.SecondWriterAsync(); // a silo restarted with the new version
        await after.Trail.RecordAsync(Record(3, "user.create"));

        Assert.Equal(3L, await before.ScalarAsync<long>("SELECT count(*) FROM bastion_audit_seals"));
        Assert.Equal(2, await before.ScalarAsync<int>("SELECT key_version FROM bastion_audit_seals WHERE seq = 3"));
        var seenByTheSiloNotRestarted = await before.VerifyAsync();
        Assert.True(seenByTheSiloNotRestarted.Intact, seenByTheSiloNotRestarted.Problem);
        Assert.True((await after.VerifyAsync()).Intact);
    }

    [Fact]
    public async Task AFlood_EvictsNothing()
    {
        await using var env = await TrailAsync(sealEvery: 1000);
        for (var i = 1; i <= 2500; i++)
        {
            await env.Trail.EnqueueAsync(Record(i, "inference"));
        }

        await env.Trail.StopAsync(CancellationToken.None);

        var result = await env.VerifyAsync();
        Assert.True(result.Intact, result.Problem);
        Assert.Equal((1L, 2500L), (result.FirstSeq!.Value, result.Records));
        var oldest = await env.ScalarAsync<long>("SELECT min(seq) FROM bastion_audit");
        Assert.Equal(1, oldest);
    }

    [Fact]
    public async Task TwoSilosWritingAtOnce_MakeOneChain()
    {
        await using var first = await TrailAsync(sealEvery: 50);
        await using var second = await first.SecondWriterAsync();
        await Task.WhenAll(
            Task.WhenAll(Enumerable.Range(1, 150).Select(i => first.Trail.RecordAsync(Record(i, "first")))),
            Task.WhenAll(Enumerable.Range(1, 150).Select(i => second.Trail.RecordAsync(Record(i, "second")))));

        var result = await first.VerifyAsync();
        Assert.True(result.Intact, result.Problem);
        Assert.Equal(300, result.Records);
    }

    [Fact]
    public async Task Prune_DeletesASealedPrefix_AndTheRestStillVerifies_AndTheChainGoesOn()
    {
        await using var env = await TrailAsync(sealEvery: 4);
        for (var i = 1; i <= 10; i++)
        {
            await env.Trail.RecordAsync(Record(i, "user.create"));
        }

        // Records 1..7 are older than the cutoff; the newest seal among them is at 5 (seals after 1, 5, 9), so 1..5 go.
        var deleted = await AuditLedger.PruneAsync(env.Database.OwnerConnectionString, Start.AddSeconds(7.5), CancellationToken.None);
        Assert.Equal(5, deleted);

        var pruned = await env.VerifyAsync();
        Assert.True(pruned.Intact, pruned.Problem);
        Assert.Equal((6L, 10L), (pruned.FirstSeq!.Value, pruned.LastSeq!.Value));

        await env.Trail.RecordAsync(Record(11, "user.create"));
        var after = await env.VerifyAsync();
        Assert.True(after.Intact, after.Problem);
        Assert.Equal(11, after.LastSeq);
    }

    [Fact]
    public async Task TheSilosCheck_SeesTamperingWithRecordsAddedSinceItsLastCheck()
    {
        await using var env = await TrailAsync(sealEvery: 100);
        await env.Trail.RecordAsync(Record(1, "user.create"));
        await env.Trail.RecordAsync(Record(2, "user.create"));
        Assert.True((await env.Trail.CheckAsync(CancellationToken.None)).Intact);

        await env.Trail.RecordAsync(Record(3, "user.create"));
        await env.AsOwnerAsync("UPDATE bastion_audit SET recorded_at = recorded_at + interval '1 hour' WHERE seq = 3");

        var check = await env.Trail.CheckAsync(CancellationToken.None);
        Assert.False(check.Intact);
        Assert.Equal(3, check.BrokenAt);
    }

    [Fact]
    public async Task Export_WritesJsonLinesSince_AndErasuresAreReadBackForRedestruction()
    {
        await using var env = await TrailAsync(sealEvery: 100);
        await env.Trail.RecordAsync(Record(1, "user.create", target: "p-1"));
        await env.Trail.RecordAsync(Record(2, AuditLedger.ErasureAction, target: "p-erased", outcome: "ok"));
        await env.Trail.RecordAsync(Record(3, AuditLedger.ErasureAction, target: "p-failed", outcome: "500"));
        await env.Trail.RecordAsync(Record(4, "inference", detail: new Dictionary<string, string> { ["model"] = "tiny", ["completion_tokens"] = "7" }));

        using var output = new StringWriter();
        Assert.Equal(3, await env.Ledger.ExportAsync(Start.AddSeconds(2), output, CancellationToken.None));
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.Equal([2, 3, 4], lines.Select(line => line.GetProperty("seq").GetInt64()));
        Assert.Equal("7", lines[2].GetProperty("detail").GetProperty("completion_tokens").GetString());
        Assert.Equal(64, lines[0].GetProperty("hash").GetString()!.Length);

        Assert.Equal([DataKeyScope.ForUser("p-erased")], await env.Ledger.ReadErasedScopesAsync(CancellationToken.None));
    }

    private static AuditRecord Record(int second, string action, string? target = null, string outcome = "200", IReadOnlyDictionary<string, string>? detail = null) =>
        new(Start.AddSeconds(second), action, "admin-pseudonym", target, outcome, detail);

    private async Task<TrailEnvironment> TrailAsync(int sealEvery)
    {
        var database = await postgres.CreateMigratedDatabaseAsync();
        var keyStore = await postgres.CreateMigratedKeyStoreAsync();
        return TrailEnvironment.Create(database, keyStore, Path.Combine(_keyringDirectory, "keyring.json"), sealEvery);
    }

    private sealed class TrailEnvironment : IAsyncDisposable
    {
        private readonly DevelopmentKeyring _keys;
        private readonly DataKeyStore _dataKeys;
        private readonly TestDatabase _keyStore;
        private readonly string _keyringPath;
        private readonly int _sealEvery;

        private TrailEnvironment(TestDatabase database, TestDatabase keyStore, string keyringPath, int sealEvery)
        {
            Database = database;
            _keyStore = keyStore;
            _keyringPath = keyringPath;
            _sealEvery = sealEvery;
            _keys = DevelopmentKeyring.LoadOrCreate(keyringPath);
            _dataKeys = new DataKeyStore(keyStore.RuntimeConnectionString, _keys);
            // The interval is long: in these tests seals come only from the record count.
            Trail = new AuditTrail(
                database.RuntimeConnectionString, _dataKeys, _keys,
                new AuditOptions { SealEveryRecords = sealEvery, SealInterval = TimeSpan.FromDays(1), VerifyInterval = TimeSpan.FromDays(1) },
                TimeProvider.System, NullLogger<AuditTrail>.Instance);
            Ledger = new AuditLedger(database.RuntimeConnectionString, _dataKeys);
        }

        public TestDatabase Database { get; }

        public AuditTrail Trail { get; }

        public AuditLedger Ledger { get; }

        public static TrailEnvironment Create(TestDatabase database, TestDatabase keyStore, string keyringPath, int sealEvery)
        {
            var environment = new TrailEnvironment(database, keyStore, keyringPath, sealEvery);
            environment.Trail.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
            return environment;
        }

        /// <summary>Another silo's writer on the same databases and keys.</summary>
        public Task<TrailEnvironment> SecondWriterAsync() => Task.FromResult(Create(Database, _keyStore, _keyringPath, _sealEvery));

        public async Task<AuditVerification> VerifyAsync()
        {
            await using var connection = new NpgsqlConnection(Database.RuntimeConnectionString);
            await connection.OpenAsync();
            return await AuditVerifier.VerifyAsync(connection, _keys, CancellationToken.None);
        }

        public async Task<T> ScalarAsync<T>(string sql)
        {
            await using var connection = new NpgsqlConnection(Database.OwnerConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            return (T)(await command.ExecuteScalarAsync())!;
        }

        public async Task AsOwnerAsync(string sql)
        {
            await using var connection = new NpgsqlConnection(Database.OwnerConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await Trail.DisposeAsync();
            _dataKeys.Dispose();
            _keys.Dispose();
        }
    }
}
