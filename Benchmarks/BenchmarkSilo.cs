using Bastion.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace Bastion.Benchmarks;

/// <summary>
/// One real Development silo, started in-process for a benchmark class: its own data directory under <c>/tmp</c> and
/// so its own embedded PostgreSQL, which keeps fsync on as a deployment does. Stopping the silo stops that server.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class BenchmarkSilo : IAsyncDisposable
{
    private readonly string _directory;

    private BenchmarkSilo(string directory, WebApplication app)
    {
        _directory = directory;
        App = app;
    }

    public WebApplication App { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>
    /// Builds and starts the silo with <paramref name="settings"/> over the benchmark defaults (warning-level logs, one
    /// inference thread on the CPU) and <paramref name="configure"/> run on the builder before Bastion's own wiring.
    /// </summary>
    public static async Task<BenchmarkSilo> StartAsync(
        string name, IReadOnlyDictionary<string, string?>? settings = null, Action<WebApplicationBuilder>? configure = null)
    {
        // Under /tmp (not the caller's home): as root, the embedded server runs as the postgres OS user, which must reach it.
        var directory = Path.Combine("/tmp", $"bastion-{name}-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(
            directory,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        WebApplication? app = null;
        try
        {
            app = await BastionApplication.BuildAsync(["--environment=Development"], builder =>
            {
                var values = new Dictionary<string, string?>
                {
                    ["Bastion:Node:DataDirectory"] = directory,
                    ["Bastion:Inference:IntraOpThreads"] = "1",

                    // Where a benchmark generates, the CPU keeps it the same on every host.
                    ["Bastion:Inference:ExecutionProvider"] = "Cpu",
                    ["Logging:LogLevel:Default"] = "Warning",
                };
                foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
                {
                    values[key] = value;
                }

                builder.Configuration.AddInMemoryCollection(values);
                configure?.Invoke(builder);
            });
            await app.StartAsync();
            return new BenchmarkSilo(directory, app);
        }
        catch
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }

            DeleteDirectory(directory);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Stopping the silo stops its embedded PostgreSQL.
        await App.StopAsync();
        await App.DisposeAsync();
        DeleteDirectory(_directory);
    }

    private static void DeleteDirectory(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
