using System.Runtime.Versioning;
using Bastion.Storage;
using Npgsql;

namespace Bastion.Tests.Silo.Storage;

[Collection("Postgres")]
[SupportedOSPlatform("linux")]
public sealed class SchemaMigratorTests(PostgresFixture postgres)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task MigrateAsync_Twice_SecondRunAppliesNothing()
    {
        var db = await postgres.CreateDatabaseAsync();

        var first = await SchemaMigrator.MigrateAsync(db.OwnerConnectionString, EmbeddedPostgres.RuntimeRole, None);
        var second = await SchemaMigrator.MigrateAsync(db.OwnerConnectionString, EmbeddedPostgres.RuntimeRole, None);

        Assert.Equal(SchemaMigration.All.Select(m => m.Version), first.Select(m => m.Version));
        Assert.Empty(second);
        Assert.Equal(SchemaMigration.All.Count, await CountHistoryAsync(db));
    }

    [Fact]
    public async Task MigrateAsync_ConcurrentCallsOnFreshDatabase_ApplyEachScriptOnce()
    {
        var db = await postgres.CreateDatabaseAsync();

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            Task.Run(() => SchemaMigrator.MigrateAsync(db.OwnerConnectionString, EmbeddedPostgres.RuntimeRole, None))));

        var applied = results.SelectMany(r => r).Select(m => m.Version).OrderBy(v => v);
        Assert.Equal(SchemaMigration.All.Select(m => m.Version), applied);
        Assert.Equal(SchemaMigration.All.Count, await CountHistoryAsync(db));
        await SchemaMigrator.EnsureCurrentAsync(db.RuntimeConnectionString, None);
    }

    [Fact]
    public async Task EnsureCurrentAsync_AfterMigrate_Passes()
    {
        var db = await postgres.CreateMigratedDatabaseAsync();

        await SchemaMigrator.EnsureCurrentAsync(db.RuntimeConnectionString, None);
    }

    [Fact]
    public async Task EnsureCurrentAsync_EmptyDatabase_ThrowsWithMigrateCommand()
    {
        var db = await postgres.CreateDatabaseAsync();

        var error = await Assert.ThrowsAsync<SchemaBehindException>(() => SchemaMigrator.EnsureCurrentAsync(db.RuntimeConnectionString, None));

        Assert.Contains("dotnet run --project Silo -- migrate", error.Message, StringComparison.Ordinal);
        Assert.Contains($"version {SchemaMigrator.ExpectedVersion}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnsureCurrentAsync_DatabaseBehind_ThrowsNamingAppliedAndExpectedVersions()
    {
        var db = await postgres.CreateMigratedDatabaseAsync();
        await ExecuteAsync(db.OwnerConnectionString, $"DELETE FROM bastion_schema_history WHERE version = {SchemaMigrator.ExpectedVersion}");

        var error = await Assert.ThrowsAsync<SchemaBehindException>(() => SchemaMigrator.EnsureCurrentAsync(db.RuntimeConnectionString, None));

        Assert.Contains($"applied version {SchemaMigrator.ExpectedVersion - 1}, expected {SchemaMigrator.ExpectedVersion}", error.Message, StringComparison.Ordinal);
        Assert.Contains("dotnet run --project Silo -- migrate", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MigrateAsync_AppliedScriptChanged_RefusesWithChecksumError()
    {
        var db = await postgres.CreateMigratedDatabaseAsync();
        await ExecuteAsync(db.OwnerConnectionString, "UPDATE bastion_schema_history SET sha256 = repeat('0', 64) WHERE version = 1");

        var error = await Assert.ThrowsAsync<SchemaChecksumMismatchException>(() =>
            SchemaMigrator.MigrateAsync(db.OwnerConnectionString, EmbeddedPostgres.RuntimeRole, None));

        Assert.Contains("0001_orleans_query", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RuntimeRole_CanReadQueriesButCannotCreateTablesOrChangeQueries()
    {
        var db = await postgres.CreateMigratedDatabaseAsync();

        await using (var connection = new NpgsqlConnection(db.RuntimeConnectionString))
        {
            await connection.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT count(*) FROM OrleansQuery", connection);
            Assert.True((long)(await count.ExecuteScalarAsync())! > 0);
        }

        foreach (var sql in new[]
        {
            "CREATE TABLE intruder (id int)",
            "UPDATE OrleansQuery SET QueryText = 'SELECT 1'",
            "INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES ('x', 'SELECT 1')",
            "DELETE FROM OrleansQuery",
            "DELETE FROM bastion_schema_history",
        })
        {
            var error = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(db.RuntimeConnectionString, sql));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, error.SqlState);
        }
    }

    private static async Task<long> CountHistoryAsync(TestDatabase db)
    {
        await using var connection = new NpgsqlConnection(db.OwnerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM bastion_schema_history", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
