using System.Diagnostics;
using Bastion.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// The official OpenAI JavaScript SDK (Tests/js, pinned in its package-lock.json) against a test silo: errors, models,
/// completions, streamed chat, logprobs and <c>n</c>, each a <c>node --test</c> case. CI installs the packages
/// (<c>.ci/run</c>); without node or them this test fails rather than skips, so a CI run can never pass without it.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class OpenAiJsSdkTests(SiloFixture fixture, ITestOutputHelper output)
{
    private const string InstallHint = "Run `npm ci --prefix Tests/js` (node 20 or later) before the tests; .ci/run does.";

    [Fact]
    public async Task OpenAiJsSdk_NodeTests_AllPass()
    {
        var directory = FindJsTests();
        Assert.True(Directory.Exists(Path.Combine(directory, "node_modules", "openai")), $"Tests/js/node_modules/openai is missing. {InstallHint}");
        var apiKey = await fixture.Silo.CreateUserWithKeyAsync("js-sdk-" + Guid.NewGuid().ToString("N"), "user");

        var start = new ProcessStartInfo("node", ["--test", "--test-reporter=spec", "openai.test.js"])
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["BASTION_BASE_URL"] = new Uri(fixture.Silo.Http.BaseAddress!, "/v1").ToString();
        start.Environment["BASTION_API_KEY"] = apiKey;
        // The test silo's self-signed development certificate: node trusts it as it trusts its own CAs.
        start.Environment["NODE_EXTRA_CA_CERTS"] = fixture.Silo.Services.GetRequiredService<EdgeEndpoints>().CaFile;
        Process node;
        try
        {
            node = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            Assert.Fail($"node cannot be started ({exception.Message}). Install Node.js 20 or later. {InstallHint}");
            return;
        }

        using (node)
        {
            var stdout = node.StandardOutput.ReadToEndAsync();
            var stderr = node.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            try
            {
                await node.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                node.Kill(entireProcessTree: true);
            }

            output.WriteLine(await stdout);
            output.WriteLine(await stderr);
            Assert.True(node.HasExited && node.ExitCode == 0, $"node --test failed (exit {(node.HasExited ? node.ExitCode : "none: timed out")}):\n{await stdout}\n{await stderr}");
        }
    }

    private static string FindJsTests()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "Tests", "js");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"Tests/js is not found above {AppContext.BaseDirectory}.");
    }
}
