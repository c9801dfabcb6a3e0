using System.Runtime.Versioning;
using Bastion.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bastion.Tests.Silo.Storage;

/// <summary>
/// One private PostgreSQL server for the whole test run, under a fresh <c>/tmp/bastion-tests-*</c>
/// directory with fsync off, removed at the end. Use it with <c>[Collection("Postgres")]</c> and
/// give every test its own database:
/// <code>
/// [Collection("Postgres")]
/// public sealed class MyTests(PostgresFixture postgres)
/// {
///     [Fact]
///     public async Task Something()
///     {
///         var db = await postgres.CreateMigratedDatabaseAsync();
///         // db.RuntimeConnectionString: what a silo uses (invariant "Npgsql").
///     }
/// }
/// </code>
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class PostgresFixture : IAsyncLifetime
{
    private readonly string directory = Path.Combine("/tmp", $"bastion-tests-{Guid.NewGuid():N}");
    private EmbeddedPostgres? server;
    private int databaseCount;

    /// <summary>The running server (owner/runtime connection strings of its default database, port, data directory).</summary>
    public EmbeddedPostgres Server => server ?? throw new InvalidOperationException("The fixture has not started.");

    /// <summary>A new, empty database (no schema) with connection strings for the owner and the runtime role.</summary>
    public async Task<TestDatabase> CreateDatabaseAsync()
    {
        var name = $"test_{Interlocked.Increment(ref databaseCount)}_{Guid.NewGuid():N}";
        var (owner, runtime) = await Server.CreateDatabaseAsync(name);
        return new TestDatabase(name, owner, runtime);
    }

    /// <summary>A new database with the current schema applied and the runtime role granted.</summary>
    public async Task<TestDatabase> CreateMigratedDatabaseAsync()
    {
        var database = await CreateDatabaseAsync();
        await SchemaMigrator.MigrateAsync(database.OwnerConnectionString, EmbeddedPostgres.RuntimeRole, CancellationToken.None);
        return database;
    }

    /// <summary>
    /// A new key-store database with its schema applied; <see cref="TestDatabase.RuntimeConnectionString"/>
    /// connects as the key store's runtime role (<see cref="EmbeddedPostgres.KeyStoreRuntimeRole"/>).
    /// </summary>
    public async Task<TestDatabase> CreateMigratedKeyStoreAsync()
    {
        var name = $"keys_{Interlocked.Increment(ref databaseCount)}_{Guid.NewGuid():N}";
        var (owner, runtime) = await Server.CreateKeyStoreDatabaseAsync(name);
        await SchemaMigrator.MigrateAsync(SchemaMigrationSet.KeyStore, owner, EmbeddedPostgres.KeyStoreRuntimeRole, CancellationToken.None);
        return new TestDatabase(name, owner, runtime);
    }

    async Task IAsyncLifetime.InitializeAsync() =>
        server = await EmbeddedPostgres.StartAsync(
            Path.Combine(directory, "postgres"),
            new EmbeddedPostgresOptions { DisableDurability = true, Tls = TestPostgresTls.Create(Path.Combine(directory, "tls")) },
            NullLogger.Instance,
            CancellationToken.None);

    async Task IAsyncLifetime.DisposeAsync()
    {
        if (server is not null)
        {
            await server.DisposeAsync();
        }

        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}

/// <summary>A database created for one test.</summary>
/// <param name="Name">The database name.</param>
/// <param name="OwnerConnectionString">Connects as the schema owner (superuser of the test server).</param>
/// <param name="RuntimeConnectionString">Connects as the least-privilege runtime role.</param>
public sealed record TestDatabase(string Name, string OwnerConnectionString, string RuntimeConnectionString);

/// <summary>Shares one <see cref="PostgresFixture"/> across every class marked <c>[Collection("Postgres")]</c>.</summary>
[CollectionDefinition("Postgres")]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;
