using Bastion.Storage;

namespace Bastion.Hosting;

/// <summary>
/// <c>dotnet run --project Silo -- migrate</c>: applies the state database's schema as its owner
/// (<c>ConnectionStrings:BastionOwner</c>) and the key store's as its owner
/// (<c>ConnectionStrings:BastionKeysOwner</c>), or both to the embedded development server when neither is set.
/// With <c>--accept-restored-state</c> it then forgets the key store's record of state versions, so that a state
/// database restored from a backup on purpose is read (see <see cref="StateVersions.ForgetAllAsync"/>).
/// </summary>
public static class MigrateCommand
{
    private const string AcceptRestoredState = "--accept-restored-state";

    public static async Task<int> RunAsync(string[] args)
    {
        var acceptRestored = args.Contains(AcceptRestoredState, StringComparer.Ordinal);
        var builder = WebApplication.CreateBuilder([.. args.Where(arg => arg != AcceptRestoredState)]);
        var configuration = builder.Configuration;
        var database = configuration.BindValidated<DatabaseOptions>(DatabaseOptions.SectionName);
        using var loggerFactory = LoggerFactory.Create(logging => logging.AddSimpleConsole());
        var logger = loggerFactory.CreateLogger("Bastion.Migrate");
        var owner = configuration.GetConnectionString(DatabaseOptions.OwnerConnectionStringName);
        var keyStoreOwner = configuration.GetConnectionString(DatabaseOptions.KeyStoreOwnerConnectionStringName);
        if (!string.IsNullOrWhiteSpace(owner) || !string.IsNullOrWhiteSpace(keyStoreOwner))
        {
            // Either may be migrated alone (separate owners, separate maintenance windows); the
            // connection strings are used as given, TLS settings included, and outside Development
            // those settings must verify the server: the owners' passwords are the keys to everything.
            RequireVerifiedServerOutsideDevelopment(builder.Environment, owner, DatabaseOptions.OwnerConnectionStringName);
            RequireVerifiedServerOutsideDevelopment(builder.Environment, keyStoreOwner, DatabaseOptions.KeyStoreOwnerConnectionStringName);
            if (!string.IsNullOrWhiteSpace(owner))
            {
                Report(SchemaMigrationSet.State, await SchemaMigrator.MigrateAsync(SchemaMigrationSet.State, owner, database.RuntimeRole, CancellationToken.None));
            }

            if (!string.IsNullOrWhiteSpace(keyStoreOwner))
            {
                Report(SchemaMigrationSet.KeyStore, await SchemaMigrator.MigrateAsync(
                    SchemaMigrationSet.KeyStore, keyStoreOwner, database.KeyStoreRuntimeRole, CancellationToken.None));
                if (acceptRestored)
                {
                    await AcceptRestoredStateAsync(keyStoreOwner);
                }
            }
            else if (acceptRestored)
            {
                await Console.Error.WriteLineAsync($"{AcceptRestoredState} needs ConnectionStrings:{DatabaseOptions.KeyStoreOwnerConnectionStringName}.");
                return 2;
            }

            return 0;
        }

        if (!builder.Environment.IsDevelopment())
        {
            throw new StartupException(
                $"ConnectionStrings:{DatabaseOptions.OwnerConnectionStringName} and ConnectionStrings:{DatabaseOptions.KeyStoreOwnerConnectionStringName} are not set; " +
                "migrate needs the owners' connection strings of the state database and of the key store.");
        }

        var node = configuration.BindValidated<NodeOptions>(NodeOptions.SectionName);
        var paths = new DevelopmentPaths(Path.GetFullPath(node.DataDirectory, builder.Environment.ContentRootPath));
        await using var embedded = await BastionDatabase.StartEmbeddedAsync(paths.Postgres, logger, CancellationToken.None);
        foreach (var (set, applied) in await BastionDatabase.MigrateEmbeddedAsync(embedded, database, CancellationToken.None))
        {
            Report(set, applied);
        }

        if (acceptRestored)
        {
            await AcceptRestoredStateAsync(embedded.KeyStoreOwnerConnectionString);
        }

        return 0;
    }

    private static async Task AcceptRestoredStateAsync(string keyStoreOwner)
    {
        await StateVersions.ForgetAllAsync(keyStoreOwner, CancellationToken.None);
        Console.Out.WriteLine("key store: state versions forgotten; the state database is read as it is now, and each state is protected again from its next write");
    }

    private static void RequireVerifiedServerOutsideDevelopment(IWebHostEnvironment environment, string? connectionString, string setting)
    {
        if (!environment.IsDevelopment() && !string.IsNullOrWhiteSpace(connectionString))
        {
            BastionDatabase.RequireVerifiedServer(connectionString, setting);
        }
    }

    private static void Report(SchemaMigrationSet set, IReadOnlyList<SchemaMigration> applied)
    {
        foreach (var migration in applied)
        {
            Console.Out.WriteLine($"{set.Name}: applied {migration.Version:D4} {migration.Name}");
        }

        Console.Out.WriteLine($"{set.Name} schema at version {set.ExpectedVersion} ({applied.Count} migration(s) applied now)");
    }
}
