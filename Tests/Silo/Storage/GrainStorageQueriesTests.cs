using System.Data;
using System.Runtime.Versioning;
using Npgsql;

namespace Bastion.Tests.Silo.Storage;

/// <summary>
/// The storage queries' optimistic concurrency, bound the way the Orleans ADO.NET provider binds
/// them: a stale or missing etag must yield NULL, which the provider turns into InconsistentStateException.
/// </summary>
[Collection("Postgres")]
[SupportedOSPlatform("linux")]
public sealed class GrainStorageQueriesTests(PostgresFixture postgres)
{
    [Fact]
    public async Task WriteToStorage_StaleOrDuplicateEtag_ReturnsNullVersion()
    {
        var db = await postgres.CreateMigratedDatabaseAsync();
        await using var connection = new NpgsqlConnection(db.RuntimeConnectionString);
        await connection.OpenAsync();
        var write = await QueryTextAsync(connection, "WriteToStorageKey");

        Assert.Equal(1, await WriteAsync(connection, write, etag: null));
        Assert.Null(await WriteAsync(connection, write, etag: null));
        Assert.Equal(2, await WriteAsync(connection, write, etag: 1));
        Assert.Null(await WriteAsync(connection, write, etag: 1));
    }

    private static async Task<string> QueryTextAsync(NpgsqlConnection connection, string key)
    {
        await using var command = new NpgsqlCommand("SELECT QueryText FROM OrleansQuery WHERE QueryKey = @key", connection);
        command.Parameters.AddWithValue("key", key);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<int?> WriteAsync(NpgsqlConnection connection, string sql, int? etag)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        Add(command, "GrainIdHash", 7, DbType.Int32);
        Add(command, "GrainIdN0", 0L, DbType.Int64);
        Add(command, "GrainIdN1", 0L, DbType.Int64);
        Add(command, "GrainTypeHash", 11, DbType.Int32);
        Add(command, "GrainTypeString", "probeState", DbType.String);
        Add(command, "GrainIdExtensionString", "user-1", DbType.String);
        Add(command, "ServiceId", "service", DbType.String);
        Add(command, "GrainStateVersion", etag, DbType.Int32);
        Add(command, "PayloadBinary", new byte[] { 1, 2, 3 }, DbType.Binary);
        var result = await command.ExecuteScalarAsync();
        return result is DBNull or null ? null : (int)result;
    }

    private static void Add(NpgsqlCommand command, string name, object? value, DbType type) =>
        command.Parameters.Add(new NpgsqlParameter { ParameterName = name, Value = value ?? DBNull.Value, DbType = type });
}
