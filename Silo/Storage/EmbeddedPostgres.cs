using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Bastion.Storage.Internal;
using Npgsql;

namespace Bastion.Storage;

/// <summary>
/// A private PostgreSQL server for development and test fixtures: its own data directory, a free
/// loopback port, scram-sha-256 passwords generated on first start and kept in a 0600 file beside
/// the cluster. When this process is root the server runs as the <c>postgres</c> OS user.
/// </summary>
/// <remarks>
/// Layout of <see cref="DataDirectory"/>: <c>pgdata/</c> (the cluster, owned by the server's OS
/// user) and <c>credentials</c> (the generated passwords, mode 0600, owned by this process's user).
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed partial class EmbeddedPostgres : IAsyncDisposable
{
    /// <summary>The cluster's superuser, which owns the schema and runs migrations.</summary>
    public const string OwnerRole = "bastion_owner";

    /// <summary>The least-privilege login that serving silos use.</summary>
    public const string RuntimeRole = "bastion_runtime";

    /// <summary>The least-privilege login of the key store, which no other database grants anything.</summary>
    public const string KeyStoreRuntimeRole = "bastion_keys_runtime";

    /// <summary>The database created on first start, owned by <see cref="OwnerRole"/>.</summary>
    public const string DefaultDatabase = "bastion";

    /// <summary>The key-store database created on first start, owned by <see cref="OwnerRole"/>.</summary>
    public const string KeyStoreDatabase = "bastion_keys";

    private const string ClusterFolderName = "pgdata";
    private const string CredentialsFileName = "credentials";
    private const string ServerCertificateFileName = "server.crt";
    private const string ServerKeyFileName = "server.key";
    private const int StartAttempts = 3;

    private readonly string binDirectory;
    private readonly string ownerPassword;
    private readonly string runtimePassword;
    private readonly string keyStorePassword;
    private readonly EmbeddedPostgresTls? tls;
    private readonly ILogger logger;
    private int disposed;

    private EmbeddedPostgres(string dataDirectory, string binDirectory, int port, Credentials credentials, EmbeddedPostgresTls? tls, ILogger logger)
    {
        DataDirectory = dataDirectory;
        this.binDirectory = binDirectory;
        Port = port;
        ownerPassword = credentials.Owner;
        runtimePassword = credentials.Runtime;
        keyStorePassword = credentials.KeyStore;
        this.tls = tls;
        this.logger = logger;
    }

    /// <summary>The directory that holds the cluster (<c>pgdata/</c>) and the credentials file.</summary>
    public string DataDirectory { get; }

    /// <summary>The loopback TCP port the server listens on (chosen at start).</summary>
    public int Port { get; }

    /// <summary>Connection string of <see cref="OwnerRole"/> to <see cref="DefaultDatabase"/>.</summary>
    public string OwnerConnectionString => BuildConnectionString(DefaultDatabase, OwnerRole, ownerPassword);

    /// <summary>Connection string of <see cref="RuntimeRole"/> to <see cref="DefaultDatabase"/>.</summary>
    public string RuntimeConnectionString => BuildConnectionString(DefaultDatabase, RuntimeRole, runtimePassword);

    /// <summary>Connection string of <see cref="OwnerRole"/> to <see cref="KeyStoreDatabase"/>.</summary>
    public string KeyStoreOwnerConnectionString => BuildConnectionString(KeyStoreDatabase, OwnerRole, ownerPassword);

    /// <summary>Connection string of <see cref="KeyStoreRuntimeRole"/> to <see cref="KeyStoreDatabase"/>.</summary>
    public string KeyStoreRuntimeConnectionString => BuildConnectionString(KeyStoreDatabase, KeyStoreRuntimeRole, keyStorePassword);

    private string ClusterDirectory => Path.Combine(DataDirectory, ClusterFolderName);

    /// <summary>Starts (initializing on first use) a server on <paramref name="dataDirectory"/> with durable settings.</summary>
    public static Task<EmbeddedPostgres> StartAsync(string dataDirectory, ILogger logger, CancellationToken cancellationToken) =>
        StartAsync(dataDirectory, new EmbeddedPostgresOptions(), logger, cancellationToken);

    /// <summary>
    /// Starts (initializing on first use) a server on <paramref name="dataDirectory"/>. A
    /// <c>postmaster.pid</c> left by a crash is removed; a server still running on the directory is
    /// stopped first. When running as root, pass a directory from <see cref="ResolveDataDirectoryAsync"/>.
    /// </summary>
    public static async Task<EmbeddedPostgres> StartAsync(string dataDirectory, EmbeddedPostgresOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDirectory);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);

        var root = Path.GetFullPath(dataDirectory);
        var binDirectory = FindBinDirectory();
        Directory.CreateDirectory(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        if (ProcessRunner.IsRoot && !await IsReachableByPostgresUserAsync(root, cancellationToken))
        {
            throw new InvalidOperationException(
                $"The '{ProcessRunner.PostgresUser}' OS user cannot reach {root}; choose a directory with {nameof(ResolveDataDirectoryAsync)}.");
        }

        var cluster = Path.Combine(root, ClusterFolderName);
        var credentialsPath = Path.Combine(root, CredentialsFileName);
        Credentials credentials;
        if (File.Exists(Path.Combine(cluster, "PG_VERSION")))
        {
            credentials = ReadCredentials(credentialsPath);
        }
        else
        {
            StorageLog.InitializingCluster(logger, cluster);
            credentials = new Credentials(GeneratePassword(), GeneratePassword(), GeneratePassword());
            WriteCredentials(credentialsPath, credentials);
            await InitializeClusterAsync(binDirectory, root, cluster, credentials.Owner, options, cancellationToken);
        }

        if (options.Tls is not null)
        {
            await InstallServerCertificateAsync(root, cluster, options.Tls, cancellationToken);
        }

        await HandleLeftoverServerAsync(binDirectory, root, cluster, logger, cancellationToken);

        for (var attempt = 1; ; attempt++)
        {
            var port = FindFreePort();
            var instance = new EmbeddedPostgres(root, binDirectory, port, credentials, options.Tls, logger);
            try
            {
                await instance.StartServerAsync(options, cancellationToken);
            }
            catch (PostgresCommandException ex) when (attempt < StartAttempts)
            {
                // Another process may have taken the port between probing and binding it.
                StorageLog.StartRetry(logger, ex, port, attempt);
                continue;
            }

            try
            {
                await instance.EnsureRolesAndDatabaseAsync(cancellationToken);
            }
            catch
            {
                await instance.DisposeAsync();
                throw;
            }

            var version = (await File.ReadAllTextAsync(Path.Combine(cluster, "PG_VERSION"), cancellationToken)).Trim();
            StorageLog.Started(logger, version, port, root);
            return instance;
        }
    }

    /// <summary>
    /// Picks the data directory for a development server: <paramref name="requested"/> when the
    /// server's OS user can reach it (always, unless this process is root), else
    /// <c>/var/tmp/bastion-&lt;hash of the requested path&gt;/</c>. Returns the full path chosen, for the caller to print.
    /// </summary>
    public static async Task<string> ResolveDataDirectoryAsync(string requested, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(requested);
        var full = Path.GetFullPath(requested);
        if (!ProcessRunner.IsRoot)
        {
            return full;
        }

        // Directories we create are world-traversable, so the deepest existing ancestor decides.
        var existing = full;
        while (!Directory.Exists(existing))
        {
            existing = Path.GetDirectoryName(existing) ?? "/";
        }

        if (await IsReachableByPostgresUserAsync(existing, cancellationToken))
        {
            return full;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(full)))[..12];
        return Path.Combine("/var/tmp", $"bastion-{hash}");
    }

    /// <summary>The <c>bin</c> directory of the newest PostgreSQL under <c>/usr/lib/postgresql/</c>.</summary>
    public static string FindBinDirectory()
    {
        const string installRoot = "/usr/lib/postgresql";
        var newest = Directory.Exists(installRoot)
            ? Directory.GetDirectories(installRoot)
                .Select(dir => (Dir: dir, Major: int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var major) ? major : -1))
                .Where(candidate => candidate.Major >= 0 && File.Exists(Path.Combine(candidate.Dir, "bin", "pg_ctl")))
                .OrderByDescending(candidate => candidate.Major)
                .Select(candidate => Path.Combine(candidate.Dir, "bin"))
                .FirstOrDefault()
            : null;
        return newest ?? throw new InvalidOperationException(
            $"No PostgreSQL server binaries found under {installRoot}/*/bin (install the postgresql package, or configure an external database).");
    }

    /// <summary>
    /// Creates database <paramref name="name"/> owned by <see cref="OwnerRole"/> and returns the
    /// owner's and the runtime role's connection strings to it.
    /// </summary>
    public async Task<(string OwnerConnectionString, string RuntimeConnectionString)> CreateDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        await CreateEmptyDatabaseAsync(name, cancellationToken);
        return (BuildConnectionString(name, OwnerRole, ownerPassword), BuildConnectionString(name, RuntimeRole, runtimePassword));
    }

    /// <summary>
    /// Creates key-store database <paramref name="name"/> owned by <see cref="OwnerRole"/> and returns the
    /// owner's and the key store's runtime role (<see cref="KeyStoreRuntimeRole"/>) connection strings to it.
    /// </summary>
    public async Task<(string OwnerConnectionString, string RuntimeConnectionString)> CreateKeyStoreDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        await CreateEmptyDatabaseAsync(name, cancellationToken);
        return (BuildConnectionString(name, OwnerRole, ownerPassword), BuildConnectionString(name, KeyStoreRuntimeRole, keyStorePassword));
    }

    private async Task CreateEmptyDatabaseAsync(string name, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        if (!DatabaseNamePattern().IsMatch(name))
        {
            throw new ArgumentException("Database names are lower-case letters, digits and underscores, at most 63 characters.", nameof(name));
        }

        await using (var connection = new NpgsqlConnection(BuildConnectionString("postgres", OwnerRole, ownerPassword)))
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name} OWNER {OwnerRole}", connection);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>Stops the server (fast shutdown: open sessions are disconnected).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        // Pooled connections would otherwise hold sockets to a server that is gone.
        NpgsqlConnection.ClearAllPools();
        try
        {
            await PgCtlAsync(binDirectory, DataDirectory, ["stop", "-D", ClusterDirectory, "-m", "fast", "-w", "-t", "60"], CancellationToken.None);
            StorageLog.Stopped(logger, Port);
        }
        catch (PostgresCommandException ex)
        {
            StorageLog.StopFailed(logger, ex, Port);
        }
    }

    private async Task StartServerAsync(EmbeddedPostgresOptions options, CancellationToken cancellationToken)
    {
        var serverOptions = $"-p {Port.ToString(CultureInfo.InvariantCulture)}";
        if (options.DisableDurability)
        {
            serverOptions += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off";
        }

        if (options.Tls is not null)
        {
            // Relative paths resolve against the cluster directory, where InstallServerCertificateAsync put them.
            serverOptions += $" -c ssl=on -c ssl_cert_file={ServerCertificateFileName} -c ssl_key_file={ServerKeyFileName}";
        }

        await PgCtlAsync(
            binDirectory,
            DataDirectory,
            ["start", "-D", ClusterDirectory, "-w", "-t", "60", "-l", Path.Combine(ClusterDirectory, "server.log"), "-o", serverOptions],
            cancellationToken);
    }

    private async Task EnsureRolesAndDatabaseAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(BuildConnectionString("postgres", OwnerRole, ownerPassword));
        await connection.OpenAsync(cancellationToken);

        await EnsureRoleAsync(connection, RuntimeRole, runtimePassword, cancellationToken);
        await EnsureRoleAsync(connection, KeyStoreRuntimeRole, keyStorePassword, cancellationToken);
        await EnsureDatabaseAsync(connection, DefaultDatabase, cancellationToken);
        await EnsureDatabaseAsync(connection, KeyStoreDatabase, cancellationToken);
    }

    private static async Task EnsureRoleAsync(NpgsqlConnection connection, string role, string password, CancellationToken cancellationToken)
    {
        await using var roleExists = new NpgsqlCommand("SELECT count(*) FROM pg_roles WHERE rolname = @role", connection);
        roleExists.Parameters.AddWithValue("role", role);
        if (Convert.ToInt64(await roleExists.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) == 0)
        {
            // The password is generated hex, so embedding it as a literal is safe; DDL takes no parameters.
            await using var createRole = new NpgsqlCommand(
                $"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '{password}'",
                connection);
            await createRole.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private static async Task EnsureDatabaseAsync(NpgsqlConnection connection, string name, CancellationToken cancellationToken)
    {
        await using var databaseExists = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname = @name", connection);
        databaseExists.Parameters.AddWithValue("name", name);
        if (Convert.ToInt64(await databaseExists.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) == 0)
        {
            await using var createDatabase = new NpgsqlCommand($"CREATE DATABASE {name} OWNER {OwnerRole}", connection);
            await createDatabase.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Copies the server certificate and key into the cluster directory, owned by the server's OS
    /// user with mode 0600 (PostgreSQL refuses a key that others can read).
    /// </summary>
    private static async Task InstallServerCertificateAsync(string root, string cluster, EmbeddedPostgresTls tls, CancellationToken cancellationToken)
    {
        var certificate = Path.Combine(cluster, ServerCertificateFileName);
        var key = Path.Combine(cluster, ServerKeyFileName);
        File.Copy(tls.CertificateFile, certificate, overwrite: true);
        File.Copy(tls.KeyFile, key, overwrite: true);
        File.SetUnixFileMode(certificate, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (ProcessRunner.IsRoot)
        {
            await ProcessRunner.RunAsync("chown", [$"{ProcessRunner.PostgresUser}:", certificate, key], root, asPostgresUser: false, cancellationToken);
        }
    }

    private static async Task InitializeClusterAsync(string binDirectory, string root, string cluster, string ownerPassword, EmbeddedPostgresOptions options, CancellationToken cancellationToken)
    {
        // A half-finished earlier initdb leaves a directory initdb refuses to reuse.
        if (Directory.Exists(cluster))
        {
            Directory.Delete(cluster, recursive: true);
        }

        Directory.CreateDirectory(cluster, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var passwordFile = Path.Combine(root, $"initdb-password-{Guid.NewGuid():N}");
        try
        {
            await File.WriteAllTextAsync(passwordFile, ownerPassword + "\n", cancellationToken);
            File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (ProcessRunner.IsRoot)
            {
                await ProcessRunner.RunAsync("chown", [$"{ProcessRunner.PostgresUser}:", cluster, passwordFile], root, asPostgresUser: false, cancellationToken);
            }

            List<string> arguments =
            [
                "-D", cluster, "-U", OwnerRole, $"--pwfile={passwordFile}", "--auth=scram-sha-256",
                "--encoding=UTF8", "--no-locale", "--no-instructions",
            ];
            if (options.DisableDurability)
            {
                arguments.Add("--no-sync");
            }

            await ProcessRunner.RunAsync(Path.Combine(binDirectory, "initdb"), arguments, root, asPostgresUser: true, cancellationToken);
        }
        finally
        {
            File.Delete(passwordFile);
        }

        // Loopback TCP only; no unix socket, so no socket directory needs to be writable.
        await File.AppendAllTextAsync(
            Path.Combine(cluster, "postgresql.conf"),
            """

            # Bastion embedded server
            listen_addresses = '127.0.0.1'
            unix_socket_directories = ''
            password_encryption = 'scram-sha-256'
            max_connections = 400
            shared_buffers = 32MB
            dynamic_shared_memory_type = posix
            """,
            cancellationToken);
    }

    private static async Task HandleLeftoverServerAsync(string binDirectory, string root, string cluster, ILogger logger, CancellationToken cancellationToken)
    {
        var pidFile = Path.Combine(cluster, "postmaster.pid");
        if (!File.Exists(pidFile))
        {
            return;
        }

        var firstLine = (await File.ReadAllLinesAsync(pidFile, cancellationToken)).FirstOrDefault();
        if (!int.TryParse(firstLine, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || !IsPostgresServingDirectory(pid, cluster))
        {
            StorageLog.RemovingStalePidFile(logger, pid);
            File.Delete(pidFile);
            return;
        }

        StorageLog.StoppingLeftoverServer(logger, pid, cluster);
        await PgCtlAsync(binDirectory, root, ["stop", "-D", cluster, "-m", "fast", "-w", "-t", "60"], cancellationToken);
    }

    /// <summary>
    /// Whether <paramref name="pid"/> is a postgres process whose working directory is
    /// <paramref name="cluster"/>. Reads /proc rather than signalling, which works across users
    /// (root silo, postgres server) and rejects a recycled pid.
    /// </summary>
    private static bool IsPostgresServingDirectory(int pid, string cluster)
    {
        try
        {
            var comm = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/comm").Trim();
            if (!string.Equals(comm, "postgres", StringComparison.Ordinal))
            {
                return false;
            }

            var cwd = new DirectoryInfo($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cwd").LinkTarget;
            return cwd is not null && string.Equals(Path.TrimEndingDirectorySeparator(cwd), Path.TrimEndingDirectorySeparator(cluster), StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static Task<string> PgCtlAsync(string binDirectory, string workingDirectory, IEnumerable<string> arguments, CancellationToken cancellationToken) =>
        ProcessRunner.RunAsync(Path.Combine(binDirectory, "pg_ctl"), arguments, workingDirectory, asPostgresUser: true, cancellationToken);

    private static async Task<bool> IsReachableByPostgresUserAsync(string directory, CancellationToken cancellationToken)
    {
        try
        {
            // test -x on a directory needs search permission on every ancestor too.
            await ProcessRunner.RunAsync("test", ["-x", directory], "/", asPostgresUser: true, cancellationToken);
            return true;
        }
        catch (PostgresCommandException)
        {
            return false;
        }
    }

    private static int FindFreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string GeneratePassword() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

    private static void WriteCredentials(string path, Credentials credentials)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using var writer = new StreamWriter(path, Encoding.UTF8, options);
        writer.Write($"{OwnerRole}={credentials.Owner}\n{RuntimeRole}={credentials.Runtime}\n{KeyStoreRuntimeRole}={credentials.KeyStore}\n");
        writer.Flush();

        // UnixCreateMode does not apply when the file already existed.
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private static Credentials ReadCredentials(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"The cluster exists but its credentials file {path} is missing; remove the data directory to start afresh.");
        }

        var values = File.ReadAllLines(path)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0], parts => parts[1], StringComparer.Ordinal);
        if (!values.TryGetValue(OwnerRole, out var owner) || !values.TryGetValue(RuntimeRole, out var runtime))
        {
            throw new InvalidOperationException($"The credentials file {path} is incomplete; remove the data directory to start afresh.");
        }

        if (values.TryGetValue(KeyStoreRuntimeRole, out var keyStore))
        {
            return new Credentials(owner, runtime, keyStore);
        }

        // A cluster from before the key store moved to its own database: its role is created on this start.
        var upgraded = new Credentials(owner, runtime, GeneratePassword());
        WriteCredentials(path, upgraded);
        return upgraded;
    }

    private string BuildConnectionString(string database, string role, string password)
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Database = database,
            Username = role,
            Password = password,
        };
        if (tls is not null)
        {
            builder.SslMode = SslMode.VerifyFull;
            builder.RootCertificate = tls.CaFile;
        }

        return builder.ConnectionString;
    }

    private sealed record Credentials(string Owner, string Runtime, string KeyStore);

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex DatabaseNamePattern();
}
