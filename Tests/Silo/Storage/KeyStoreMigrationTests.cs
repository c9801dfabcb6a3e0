using System.Runtime.Versioning;
using Bastion.Storage;
using Npgsql;

namespace Bastion.Tests.Silo.Storage;

/// <summary>The key store is a database of its own: its runtime role can only read, create and destroy keys, and the state database's role cannot even connect.</summary>
[Collection("Postgres")]
[SupportedOSPlatform("linux")]
public sealed class KeyStoreMigrationTests(PostgresFixture postgres)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task MigrateAsync_KeyStore_IsIdempotent_AndEnsureCurrentPasses()
    {
        var keyStore = await postgres.CreateMigratedKeyStoreAsync();

        var again = await SchemaMigrator.MigrateAsync(SchemaMigrationSet.KeyStore, keyStore.OwnerConnectionString, EmbeddedPostgres.KeyStoreRuntimeRole, None);

        Assert.Empty(again);
        await SchemaMigrator.EnsureCurrentAsync(SchemaMigrationSet.KeyStore, keyStore.RuntimeConnectionString, None);
    }

    [Fact]
    public async Task EnsureCurrentAsync_StateDatabaseAsKeyStore_IsBehind_NamingTheKeyStoreOwnerSetting()
    {
        var state = await postgres.CreateMigratedDatabaseAsync();

        var error = await Assert.ThrowsAsync<SchemaBehindException>(() => SchemaMigrator.EnsureCurrentAsync(SchemaMigrationSet.KeyStore, state.RuntimeConnectionString, None));

        Assert.Contains("key store", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectionStrings:BastionKeysOwner", error.Message, StringComparison.Ordinal);
        Assert.Contains("0001_data_keys", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeyStoreRuntimeRole_MayCreateReadAndDestroyKeys_ButNotDeleteOrCreateTables()
    {
        var keyStore = await postgres.CreateMigratedKeyStoreAsync();
        await ExecuteAsync(keyStore.RuntimeConnectionString,
            $"INSERT INTO bastion_keys.bastion_data_keys (scope, dek_id, kek_version, wrapped) VALUES ('user:u_x', '{Guid.NewGuid()}', 1, '\\x00')");
        await ExecuteAsync(keyStore.RuntimeConnectionString, "UPDATE bastion_keys.bastion_data_keys SET wrapped = NULL, destroyed_at = now()");

        foreach (var sql in new[]
        {
            "DELETE FROM bastion_keys.bastion_data_keys",
            "TRUNCATE bastion_keys.bastion_data_keys",
            "CREATE TABLE bastion_keys.intruder (id int)",
            "CREATE TABLE intruder (id int)",
            "DELETE FROM bastion_schema_history",
        })
        {
            var error = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(keyStore.RuntimeConnectionString, sql));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, error.SqlState);
        }
    }

    [Fact]
    public async Task StateRuntimeRole_CannotConnectToTheKeyStore_AndTheStateDatabaseHasNoKeys()
    {
        var keyStore = await postgres.CreateMigratedKeyStoreAsync();
        var state = await postgres.CreateMigratedDatabaseAsync();
        var stateRoleOnKeyStore = new NpgsqlConnectionStringBuilder(state.RuntimeConnectionString) { Database = keyStore.Name }.ConnectionString;

        var error = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(stateRoleOnKeyStore, "SELECT 1"));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, error.SqlState);
        await using var connection = new NpgsqlConnection(state.OwnerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT to_regclass('bastion_keys.bastion_data_keys') IS NULL", connection);
        Assert.True((bool)(await command.ExecuteScalarAsync())!);
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
