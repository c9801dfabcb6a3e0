using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// A silo as its own process: the built <c>Bastion.Silo.dll</c> started with <c>dotnet</c>, configured through
/// environment variables as an operator would, and killed with SIGKILL (<see cref="Kill"/>) to test failover.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly TaskCompletionSource<(string Url, string CaFile)> _published = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SiloProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public HttpClient Http { get; private set; } = null!;

    public bool Killed { get; private set; }

    /// <summary>Starts a silo with <paramref name="environment"/> and waits until <c>/readyz</c> says it serves.</summary>
    public static async Task<SiloProcess> StartAsync(string name, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Bastion.Silo.dll"));
        start.Environment["DOTNET_ENVIRONMENT"] = "Development";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var silo = new SiloProcess(name, Process.Start(start)!);
        silo._process.OutputDataReceived += (_, e) => silo.Record(e.Data);
        silo._process.ErrorDataReceived += (_, e) => silo.Record(e.Data);
        silo._process.BeginOutputReadLine();
        silo._process.BeginErrorReadLine();
        var exited = silo._process.WaitForExitAsync();
        var published = await Task.WhenAny(silo._published.Task, exited).WaitAsync(TimeSpan.FromSeconds(90));
        Assert.True(published == silo._published.Task, $"Silo {name} exited during start-up:\n{silo.OutputTail()}");
        var (url, caFile) = await silo._published.Task;
        silo.Http = CreateClient(url, caFile);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var ready = await silo.Http.GetAsync("/readyz");
                if (ready.IsSuccessStatusCode)
                {
                    return silo;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), $"Silo {name} did not become ready:\n{silo.OutputTail()}");
            Assert.False(silo._process.HasExited, $"Silo {name} exited:\n{silo.OutputTail()}");
            await Task.Delay(100);
        }
    }

    /// <summary>SIGKILL: no shutdown, no goodbye to the cluster, in-flight work lost.</summary>
    public void Kill()
    {
        Killed = true;
        _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, as an orchestrator stops a silo: it drains, leaves the cluster and exits.</summary>
    public async Task TerminateAsync()
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
    }

    public string OutputTail()
    {
        lock (_output)
        {
            return string.Join('\n', _output.TakeLast(40));
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (!_process.HasExited)
        {
            try
            {
                await TerminateAsync();
            }
            catch (TimeoutException)
            {
                _process.Kill();
            }
        }

        _process.Dispose();
    }

    private void Record(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
        }

        if (line.StartsWith("BASTION_CA_FILE=", StringComparison.Ordinal))
        {
            string? url;
            lock (_output)
            {
                url = _output.LastOrDefault(l => l.StartsWith("BASTION_URL=", StringComparison.Ordinal))?["BASTION_URL=".Length..];
            }

            if (url is not null)
            {
                _published.TrySetResult((url, line["BASTION_CA_FILE=".Length..]));
            }
        }
    }

    private static HttpClient CreateClient(string url, string caFile)
    {
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(caFile));
        var handler = new SocketsHttpHandler
        {
            MaxResponseDrainSize = 0,
            SslOptions =
            {
                RemoteCertificateValidationCallback = PinnedCa.Trusting(ca),
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
    }
}
