using System.Diagnostics;

namespace Bastion.Storage.Internal;

/// <summary>Runs PostgreSQL's command-line tools, as the <c>postgres</c> OS user when this process is root.</summary>
internal static class ProcessRunner
{
    public const string PostgresUser = "postgres";

    public static bool IsRoot { get; } = string.Equals(Environment.UserName, "root", StringComparison.Ordinal);

    /// <summary>Runs <paramref name="fileName"/> and returns its combined output; throws when it exits non-zero.</summary>
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, string workingDirectory, bool asPostgresUser, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        if (asPostgresUser && IsRoot)
        {
            // PostgreSQL refuses to run as root; runuser switches without needing a password or a tty.
            startInfo.FileName = "runuser";
            startInfo.ArgumentList.Add("-u");
            startInfo.ArgumentList.Add(PostgresUser);
            startInfo.ArgumentList.Add("--");
            startInfo.ArgumentList.Add(fileName);
        }
        else
        {
            startInfo.FileName = fileName;
        }

        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        // LC_ALL keeps tool messages parseable; PGPASSWORD etc. must never leak in from the environment.
        startInfo.Environment["LC_ALL"] = "C";
        startInfo.Environment.Remove("PGPASSWORD");

        using var process = Process.Start(startInfo) ?? throw new PostgresCommandException($"Could not start {fileName}.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var output = (await stdout) + (await stderr);
        if (process.ExitCode != 0)
        {
            throw new PostgresCommandException($"{Path.GetFileName(fileName)} exited with code {process.ExitCode}: {output.Trim()}");
        }

        return output;
    }
}
