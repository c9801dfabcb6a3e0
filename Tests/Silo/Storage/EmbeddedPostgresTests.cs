using System.Runtime.Versioning;
using Bastion.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Bastion.Tests.Silo.Storage;

/// <summary>Restarts on one data directory; uses its own servers, not the shared fixture's.</summary>
[SupportedOSPlatform("linux")]
public sealed class EmbeddedPostgresTests : IDisposable
{
    private static readonly EmbeddedPostgresOptions Fast = new() { DisableDurability = true };
    private readonly string directory = Path.Combine("/tmp", $"bastion-tests-{Guid.NewGuid():N}");

    [Fact]
    public async Task StartAsync_AfterCrashAndWithServerStillRunning_RecoversSameDatabase()
    {
        await using (var first = await EmbeddedPostgres.StartAsync(directory, Fast, NullLogger.Instance, CancellationToken.None))
        {
            await ExecuteAsync(first.OwnerConnectionString, "CREATE TABLE marker (id int); INSERT INTO marker VALUES (42)");

            // The previous silo died without stopping its server: the next start must take over.
            var second = await EmbeddedPostgres.StartAsync(directory, Fast, NullLogger.Instance, CancellationToken.None);
            Assert.Equal(42, await ScalarAsync(second.OwnerConnectionString, "SELECT id FROM marker"));
            await second.DisposeAsync();
        }

        // A crash leaves postmaster.pid naming a process that is gone.
        var pidFile = Path.Combine(directory, "pgdata", "postmaster.pid");
        await File.WriteAllTextAsync(pidFile, "999999\n" + Path.Combine(directory, "pgdata") + "\n");

        await using var third = await EmbeddedPostgres.StartAsync(directory, Fast, NullLogger.Instance, CancellationToken.None);
        Assert.Equal(42, await ScalarAsync(third.OwnerConnectionString, "SELECT id FROM marker"));
        Assert.Equal(1, await ScalarAsync(third.RuntimeConnectionString, "SELECT 1"));
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite,
            File.GetUnixFileMode(Path.Combine(directory, "credentials")));
    }

    [Fact]
    public async Task StartAsync_ClusterFromBeforeTheKeyStore_GetsTheKeyStoreDatabaseAndRole()
    {
        var credentials = Path.Combine(directory, "credentials");
        await using (var first = await EmbeddedPostgres.StartAsync(directory, Fast, NullLogger.Instance, CancellationToken.None))
        {
            await ExecuteAsync(first.OwnerConnectionString, $"DROP DATABASE {EmbeddedPostgres.KeyStoreDatabase}");
            await ExecuteAsync(first.OwnerConnectionString, $"DROP ROLE {EmbeddedPostgres.KeyStoreRuntimeRole}");
        }

        // The credentials file of a cluster initialised before the key store had a database of its own.
        var lines = await File.ReadAllLinesAsync(credentials);
        await File.WriteAllLinesAsync(credentials, lines.Where(line => !line.StartsWith(EmbeddedPostgres.KeyStoreRuntimeRole + "=", StringComparison.Ordinal)));

        await using var upgraded = await EmbeddedPostgres.StartAsync(directory, Fast, NullLogger.Instance, CancellationToken.None);

        Assert.Equal(1, await ScalarAsync(upgraded.KeyStoreRuntimeConnectionString, "SELECT 1"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(credentials));
    }

    [Fact]
    public async Task ResolveDataDirectoryAsync_ReachablePath_ReturnsItUnchanged()
    {
        var requested = Path.Combine(directory, "data");

        Assert.Equal(requested, await EmbeddedPostgres.ResolveDataDirectoryAsync(requested, CancellationToken.None));
    }

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<int> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (int)(await command.ExecuteScalarAsync())!;
    }
}
