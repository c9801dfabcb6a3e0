using System.Globalization;
using Bastion.Storage;
using Bastion.Storage.Internal;
using Npgsql;

namespace Bastion.Tests.Silo.Storage;

/// <summary>PostgreSQL's own backup tools, as an operator would run them (client programs: they run as any OS user).</summary>
internal static class PostgresTools
{
    /// <summary><c>pg_dump</c> of the database <paramref name="connectionString"/> names, as plain SQL into <paramref name="file"/>.</summary>
    public static Task DumpAsync(string connectionString, string file) =>
        RunAsync("pg_dump", ["--format=plain", $"--file={file}", $"--dbname={ToUri(connectionString)}"]);

    /// <summary>Restores a plain dump into the (empty) database <paramref name="connectionString"/> names; any error fails.</summary>
    public static Task RestoreAsync(string connectionString, string file) =>
        RunAsync("psql", ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", $"--file={file}", $"--dbname={ToUri(connectionString)}"]);

    /// <summary>The same server and credentials, another database.</summary>
    public static string WithDatabase(string connectionString, string database) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Database = database }.ConnectionString;

    private static Task<string> RunAsync(string tool, IEnumerable<string> arguments) =>
        ProcessRunner.RunAsync(Path.Combine(EmbeddedPostgres.FindBinDirectory(), tool), arguments, "/", asPostgresUser: false, CancellationToken.None);

    // libpq takes the password in the URI; test servers only, whose passwords are throw-away.
    private static string ToUri(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"postgresql://{Uri.EscapeDataString(builder.Username!)}:{Uri.EscapeDataString(builder.Password!)}@{builder.Host}:" +
            $"{builder.Port.ToString(CultureInfo.InvariantCulture)}/{Uri.EscapeDataString(builder.Database!)}";
    }
}
