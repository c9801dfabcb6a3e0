using Bastion.Storage;

namespace Bastion.Hosting;

/// <summary>
/// <c>dotnet run --project Silo -- migrate</c>: applies the schema as the owner role
/// (<c>ConnectionStrings:BastionOwner</c>), or to the embedded development database when none is set.
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
        if (!string.IsNullOrWhiteSpace(owner))
        {
            Report(await SchemaMigrator.MigrateAsync(owner, database.RuntimeRole, CancellationToken.None));
            return 0;
        }

        if (!builder.Environment.IsDevelopment())
        {
            throw new StartupException(
                $"ConnectionStrings:{DatabaseOptions.OwnerConnectionStringName} is not set; migrate needs the schema owner's connection string.");
        }

        var node = configuration.BindValidated<NodeOptions>(NodeOptions.SectionName);
        var paths = new DevelopmentPaths(Path.GetFullPath(node.DataDirectory, builder.Environment.ContentRootPath));
        await using var embedded = await BastionDatabase.StartEmbeddedAsync(paths.Postgres, logger, CancellationToken.None);
        Report(await SchemaMigrator.MigrateAsync(embedded.OwnerConnectionString, database.RuntimeRole, CancellationToken.None));
        return 0;
    }

    private static void Report(IReadOnlyList<SchemaMigration> applied)
    {
        foreach (var migration in applied)
        {
            Console.Out.WriteLine($"applied {migration.Version:D4} {migration.Name}");
        }

        Console.Out.WriteLine($"schema at version {SchemaMigrator.ExpectedVersion} ({applied.Count} migration(s) applied now)");
    }
}
