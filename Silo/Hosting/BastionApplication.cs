namespace Bastion.Hosting;

/// <summary>Builds a Bastion silo: the same wiring for <c>Program.cs</c> and for the tests.</summary>
public static class BastionApplication
{
    /// <summary>
    /// Builds the silo. Opens (or, in Development with nothing configured, starts) its PostgreSQL
    /// first, because Orleans' providers need the connection string at configuration time.
    /// </summary>
    public static async Task<WebApplication> BuildAsync(
        string[] args, Action<WebApplicationBuilder>? configure = null, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        var node = builder.Configuration.BindValidated<NodeOptions>(NodeOptions.SectionName);
        var paths = new DevelopmentPaths(Path.GetFullPath(node.DataDirectory, builder.Environment.ContentRootPath));

        using var startupLogging = LoggerFactory.Create(logging => logging.AddConfiguration(builder.Configuration.GetSection("Logging")).AddConsole());
        var database = await BastionDatabase.OpenAsync(
            builder.Configuration, builder.Environment.IsDevelopment(), paths.Postgres, startupLogging.CreateLogger("Bastion.Database"), cancellationToken);
        try
        {
            builder.AddBastionSilo(node, database, paths);
            builder.AddBastionHttp(node, paths);
            var app = builder.Build();
            app.MapBastionHttp(node);
            return app;
        }
        catch
        {
            await database.DisposeAsync();
            throw;
        }
    }
}
