using Bastion.Storage;

namespace Bastion.Hosting;

/// <summary>
/// <c>dotnet run --project Silo -- migrate</c>: applies the state database's schema as its owner
/// (<c>ConnectionStrings:BastionOwner</c>) and the key store's as its owner
/// (<c>ConnectionStrings:BastionKeysOwner</c>), or both to the embedded development server when neither is set.
/// </summary>
public static class MigrateCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
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

        return 0;
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
