using Bastion.Storage;
using Bastion.Tests.Silo.Storage;
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
        _postgres = await EmbeddedPostgres.StartAsync(
            dataDirectory,
            new EmbeddedPostgresOptions { DisableDurability = true, Tls = TestPostgresTls.Create(Path.Combine(_root, "postgres-tls")) },
            NullLogger.Instance,
            CancellationToken.None);
        var (runtime, directory) = await CreateDatabaseAsync();
        _silo = await TestSilo.StartAsync(runtime, directory);
    }

    /// <summary>
    /// A migrated state database and key store of its own (two databases, two runtime roles, as in
    /// production) and a data directory for a silo to use with them.
    /// </summary>
    public async Task<(SiloDatabases Database, string DataDirectory)> CreateDatabaseAsync()
    {
        var name = "silo_" + Interlocked.Increment(ref _databases);
        var (owner, runtime) = await Postgres.CreateDatabaseAsync(name);
        await SchemaMigrator.MigrateAsync(owner, EmbeddedPostgres.RuntimeRole, CancellationToken.None);
        var (keyStoreOwner, keyStore) = await Postgres.CreateKeyStoreDatabaseAsync(name + "_keys");
        await SchemaMigrator.MigrateAsync(SchemaMigrationSet.KeyStore, keyStoreOwner, EmbeddedPostgres.KeyStoreRuntimeRole, CancellationToken.None);
        var directory = Path.Combine(_root, name);
        Directory.CreateDirectory(directory);
        return (new SiloDatabases(runtime, keyStore), directory);
    }

    /// <summary>A fresh database for one cluster: every member shares its cluster id, keyring and cluster CA, as production silos do.</summary>
    public async Task<TestCluster> CreateClusterAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var (database, directory) = await CreateDatabaseAsync();
        var shared = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
        {
            ["Bastion:Node:ClusterId"] = "test-" + Guid.NewGuid().ToString("N"),
            ["Bastion:Keys:KeyringPath"] = Path.Combine(directory, "shared-keyring.json"),
            ["Bastion:Cluster:Tls:DevelopmentDirectory"] = Path.Combine(directory, "shared-cluster-tls"),
        };
        return new TestCluster(database, directory, shared);
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

/// <summary>One cluster's database and shared settings; each member silo gets its own data directory.</summary>
public sealed record TestCluster(SiloDatabases Database, string Directory, IReadOnlyDictionary<string, string?> Settings)
{
    /// <summary>
    /// Starts member <paramref name="name"/>, with <paramref name="settings"/> on top of the cluster's, and
    /// <paramref name="configure"/> run on its builder before the production wiring (telemetry tests add exporters).
    /// </summary>
    public Task<TestSilo> StartSiloAsync(
        string name, IReadOnlyDictionary<string, string?>? settings = null, Action<Microsoft.AspNetCore.Builder.WebApplicationBuilder>? configure = null)
    {
        var directory = System.IO.Directory.CreateDirectory($"{Directory}-{name}").FullName;
        var merged = new Dictionary<string, string?>(Settings);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            merged[key] = value;
        }

        return TestSilo.StartAsync(Database, directory, merged, configure);
    }
}

/// <summary>The runtime connection strings of a test silo's state database and key store.</summary>
public sealed record SiloDatabases(string State, string KeyStore)
{
    /// <summary>The state database, so tests that read grain state rows can pass the pair where a connection string goes.</summary>
    public static implicit operator string(SiloDatabases databases) => databases.State;
}

[CollectionDefinition(Name)]
public sealed class SiloCollection : ICollectionFixture<SiloFixture>
{
    public const string Name = "Silo";
}
