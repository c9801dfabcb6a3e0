using System.Security.Authentication;
using Bastion.Storage;
using Npgsql;

namespace Bastion.Hosting;

/// <summary>
/// The PostgreSQL databases a silo serves from: the state database (Orleans tables, sealed grain
/// state) and the key store (wrapped data keys), each with its own runtime role. Either both are
/// configured, or (Development only, when neither is) an embedded private server that this silo
/// starts, migrates and stops holds both.
/// </summary>
public sealed class BastionDatabase : IAsyncDisposable
{
    private readonly EmbeddedPostgres? _embedded;

    private BastionDatabase(string runtimeConnectionString, string keyStoreConnectionString, EmbeddedPostgres? embedded)
    {
        RuntimeConnectionString = runtimeConnectionString;
        KeyStoreConnectionString = keyStoreConnectionString;
        _embedded = embedded;
    }

    /// <summary>The connection string of the state database's least-privilege runtime role.</summary>
    public string RuntimeConnectionString { get; }

    /// <summary>The connection string of the key store's runtime role (read, create and destroy data keys).</summary>
    public string KeyStoreConnectionString { get; }

    /// <summary>The state database owner's connection string when the database is the embedded development server; otherwise null.</summary>
    internal string? EmbeddedOwnerConnectionString => _embedded?.OwnerConnectionString;

    public static async Task<BastionDatabase> OpenAsync(
        IConfiguration configuration, bool isDevelopment, string embeddedDirectory, ILogger logger, CancellationToken cancellationToken)
    {
        var options = configuration.BindValidated<DatabaseOptions>(DatabaseOptions.SectionName);
        var state = configuration.GetConnectionString(DatabaseOptions.RuntimeConnectionStringName);
        var keyStore = configuration.GetConnectionString(DatabaseOptions.KeyStoreConnectionStringName);
        if (!string.IsNullOrWhiteSpace(state) || !string.IsNullOrWhiteSpace(keyStore))
        {
            // A configured deployment names both: an embedded key store beside an external state
            // database would put the keys where nobody backs them up (or everybody does).
            RequireSetting(state, DatabaseOptions.RuntimeConnectionStringName, "the state database");
            RequireSetting(keyStore, DatabaseOptions.KeyStoreConnectionStringName, "the key store (wrapped data keys, a database of its own)");
            if (!isDevelopment)
            {
                RequireVerifiedServer(state!, DatabaseOptions.RuntimeConnectionStringName);
                RequireVerifiedServer(keyStore!, DatabaseOptions.KeyStoreConnectionStringName);
            }

            await EnsureCurrentAsync(SchemaMigrationSet.State, state!, DatabaseOptions.RuntimeConnectionStringName, cancellationToken);
            await EnsureCurrentAsync(SchemaMigrationSet.KeyStore, keyStore!, DatabaseOptions.KeyStoreConnectionStringName, cancellationToken);
            return new BastionDatabase(state!, keyStore!, null);
        }

        if (!isDevelopment)
        {
            throw new StartupException(
                $"ConnectionStrings:{DatabaseOptions.RuntimeConnectionStringName} is not set. Outside Development Bastion needs an external PostgreSQL; set it " +
                $"(environment: ConnectionStrings__{DatabaseOptions.RuntimeConnectionStringName}) and the key store's ConnectionStrings:{DatabaseOptions.KeyStoreConnectionStringName}.");
        }

        var embedded = await StartEmbeddedAsync(embeddedDirectory, logger, cancellationToken);
        try
        {
            await MigrateEmbeddedAsync(embedded, options, cancellationToken);
            await EnsureCurrentAsync(SchemaMigrationSet.State, embedded.RuntimeConnectionString, DatabaseOptions.RuntimeConnectionStringName, cancellationToken);
            await EnsureCurrentAsync(SchemaMigrationSet.KeyStore, embedded.KeyStoreRuntimeConnectionString, DatabaseOptions.KeyStoreConnectionStringName, cancellationToken);
            return new BastionDatabase(embedded.RuntimeConnectionString, embedded.KeyStoreRuntimeConnectionString, embedded);
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

    /// <summary>Migrates both databases of the embedded server; returns what was applied now, per database.</summary>
    internal static async Task<IReadOnlyList<(SchemaMigrationSet Set, IReadOnlyList<SchemaMigration> Applied)>> MigrateEmbeddedAsync(
        EmbeddedPostgres embedded, DatabaseOptions options, CancellationToken cancellationToken) =>
    [
        (SchemaMigrationSet.State, await SchemaMigrator.MigrateAsync(SchemaMigrationSet.State, embedded.OwnerConnectionString, options.RuntimeRole, cancellationToken)),
        (SchemaMigrationSet.KeyStore, await SchemaMigrator.MigrateAsync(
            SchemaMigrationSet.KeyStore, embedded.KeyStoreOwnerConnectionString, options.KeyStoreRuntimeRole, cancellationToken)),
    ];

    /// <summary>
    /// Refuses <paramref name="connectionString"/> unless it makes Npgsql check the server's certificate
    /// chain and host name (<c>SSL Mode=VerifyFull</c>). Anything less lets whoever sits on the path read
    /// the data or pose as the server; <c>VerifyCA</c> is refused too, because any certificate from the
    /// same CA (another host's) would pass it.
    /// </summary>
    /// <exception cref="StartupException">The connection string does not verify the server, or cannot be parsed; names <paramref name="setting"/>.</exception>
    internal static void RequireVerifiedServer(string connectionString, string setting)
    {
        SslMode mode;
        try
        {
            mode = new NpgsqlConnectionStringBuilder(connectionString).SslMode;
        }
        catch (ArgumentException)
        {
            // The parser's message may quote the offending part, which can be the password.
            throw new StartupException($"ConnectionStrings:{setting} is not a valid Npgsql connection string.");
        }

        if (mode != SslMode.VerifyFull)
        {
            throw new StartupException(
                $"ConnectionStrings:{setting} has SSL Mode={mode}; outside Development PostgreSQL must be reached over TLS that verifies the server. " +
                "Set SSL Mode=VerifyFull in that setting (with Root Certificate=<CA file> when the CA is not in the system store).");
        }
    }

    private static void RequireSetting(string? value, string name, string what)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new StartupException(
                $"ConnectionStrings:{name} is not set: {what} needs its own connection string (environment: ConnectionStrings__{name}).");
        }
    }

    private static async Task EnsureCurrentAsync(SchemaMigrationSet set, string connectionString, string setting, CancellationToken cancellationToken)
    {
        try
        {
            await SchemaMigrator.EnsureCurrentAsync(set, connectionString, cancellationToken);
        }
        catch (SchemaBehindException exception)
        {
            throw new StartupException($"ConnectionStrings:{setting}: {exception.Message}", exception);
        }
        catch (NpgsqlException exception) when (FindInner<AuthenticationException>(exception) is { } tls)
        {
            throw new StartupException(
                $"Cannot connect to PostgreSQL with ConnectionStrings:{setting}: the server's TLS certificate was not accepted ({tls.Message}). " +
                "Check SSL Mode and Root Certificate (the CA that signed the server's certificate) in that setting.", exception);
        }
        catch (NpgsqlException exception)
        {
            throw new StartupException(
                $"Cannot reach PostgreSQL with ConnectionStrings:{setting}: {exception.Message}", exception);
        }
    }

    private static T? FindInner<T>(Exception exception)
        where T : Exception
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            if (current is T match)
            {
                return match;
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_embedded is not null)
        {
            await _embedded.DisposeAsync();
        }
    }
}
