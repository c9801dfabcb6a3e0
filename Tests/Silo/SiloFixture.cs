using Bastion.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bastion.Tests.Silo;

/// <summary>
/// One private PostgreSQL and one running silo shared by the HTTP tests (each test uses its own
/// user ids). Tests that restart silos make their own databases on the same server.
/// </summary>
public sealed class SiloFixture : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "bastion-silo-tests-" + Guid.NewGuid().ToString("N")[..8]);
    private EmbeddedPostgres? _postgres;
    private TestSilo? _silo;
    private int _databases;

    public EmbeddedPostgres Postgres => _postgres ?? throw new InvalidOperationException("Not started.");

    public TestSilo Silo => _silo ?? throw new InvalidOperationException("Not started.");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        var dataDirectory = await EmbeddedPostgres.ResolveDataDirectoryAsync(Path.Combine(_root, "postgres"), CancellationToken.None);
        _postgres = await EmbeddedPostgres.StartAsync(dataDirectory, new EmbeddedPostgresOptions { DisableDurability = true }, NullLogger.Instance, CancellationToken.None);
        var (runtime, directory) = await CreateDatabaseAsync();
        _silo = await TestSilo.StartAsync(runtime, directory);
    }

    /// <summary>A migrated database of its own and a data directory for a silo to use with it.</summary>
    public async Task<(string RuntimeConnectionString, string DataDirectory)> CreateDatabaseAsync()
    {
        var name = "silo_" + Interlocked.Increment(ref _databases);
        var (owner, runtime) = await Postgres.CreateDatabaseAsync(name);
        await SchemaMigrator.MigrateAsync(owner, EmbeddedPostgres.RuntimeRole, CancellationToken.None);
        var directory = Path.Combine(_root, name);
        Directory.CreateDirectory(directory);
        return (runtime, directory);
    }

    public async Task DisposeAsync()
    {
        if (_silo is not null)
        {
            await _silo.DisposeAsync();
        }

        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the temporary directory is not part of any assertion.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class SiloCollection : ICollectionFixture<SiloFixture>
{
    public const string Name = "Silo";
}
