using Bastion.Storage;
using Npgsql;

namespace Bastion.Hosting;

/// <summary>
/// The PostgreSQL a silo serves from: the configured one, or (Development only, when none is
/// configured) an embedded private server that this silo starts, migrates and stops.
/// </summary>
public sealed class BastionDatabase : IAsyncDisposable
{
    private readonly EmbeddedPostgres? _embedded;

    private BastionDatabase(string runtimeConnectionString, EmbeddedPostgres? embedded)
    {
        RuntimeConnectionString = runtimeConnectionString;
        _embedded = embedded;
    }

    /// <summary>The connection string of the least-privilege runtime role.</summary>
    public string RuntimeConnectionString { get; }

    public static async Task<BastionDatabase> OpenAsync(
        IConfiguration configuration, bool isDevelopment, string embeddedDirectory, ILogger logger, CancellationToken cancellationToken)
    {
        var options = configuration.BindValidated<DatabaseOptions>(DatabaseOptions.SectionName);
        var configured = configuration.GetConnectionString(DatabaseOptions.RuntimeConnectionStringName);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            await EnsureCurrentAsync(configured, cancellationToken);
            return new BastionDatabase(configured, null);
        }

        if (!isDevelopment)
        {
            throw new StartupException(
                $"ConnectionStrings:{DatabaseOptions.RuntimeConnectionStringName} is not set. Outside Development Bastion needs an external PostgreSQL; set it (environment: ConnectionStrings__{DatabaseOptions.RuntimeConnectionStringName}).");
        }

        var embedded = await StartEmbeddedAsync(embeddedDirectory, logger, cancellationToken);
        try
        {
            await SchemaMigrator.MigrateAsync(embedded.OwnerConnectionString, options.RuntimeRole, cancellationToken);
            await EnsureCurrentAsync(embedded.RuntimeConnectionString, cancellationToken);
            return new BastionDatabase(embedded.RuntimeConnectionString, embedded);
        }
        catch
        {
            await embedded.DisposeAsync();
            throw;
        }
    }

    /// <summary>The development server, in <paramref name="directory"/> or a place the <c>postgres</c> user can reach.</summary>
    internal static async Task<EmbeddedPostgres> StartEmbeddedAsync(string directory, ILogger logger, CancellationToken cancellationToken) =>
        await EmbeddedPostgres.StartAsync(await EmbeddedPostgres.ResolveDataDirectoryAsync(directory, cancellationToken), logger, cancellationToken);

    private static async Task EnsureCurrentAsync(string connectionString, CancellationToken cancellationToken)
    {
        try
        {
            await SchemaMigrator.EnsureCurrentAsync(connectionString, cancellationToken);
        }
        catch (SchemaBehindException exception)
        {
            throw new StartupException(exception.Message, exception);
        }
        catch (NpgsqlException exception)
        {
            throw new StartupException(
                $"Cannot reach PostgreSQL with ConnectionStrings:{DatabaseOptions.RuntimeConnectionStringName}: {exception.Message}", exception);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_embedded is not null)
        {
            await _embedded.DisposeAsync();
        }
    }
}
