using System.Diagnostics;
using Xunit.Abstractions;

namespace Bastion.Tests.Deploy;

/// <summary>
/// deploy/kubernetes/ checked offline by its validator (deploy/kubernetes/validate/validate.mjs, pinned in its
/// package-lock.json): the Kubernetes schema with no unknown fields, the SecretProviderClass schema, and Bastion's own
/// rules. CI installs the packages (<c>.ci/run</c>); without node or them these tests fail rather than skip.
/// </summary>
public sealed class KubernetesManifestsTests(ITestOutputHelper output)
{
    private const string InstallHint = "Run `npm ci --prefix deploy/kubernetes/validate` (node 20 or later) before the tests; .ci/run does.";

    [Fact]
    public async Task Validator_OnTheManifests_PassesForTheBaseAndTheCpuOnlyOverlay()
    {
        var (exitCode, text) = await RunValidatorAsync(manifests: null);

        Assert.True(exitCode == 0, $"validate.mjs failed (exit {exitCode}):\n{text}");
        Assert.Contains("ok    kustomization .: Bastion's rules hold", text, StringComparison.Ordinal);
        Assert.Contains("ok    kustomization cpu-only: Bastion's rules hold", text, StringComparison.Ordinal);
        Assert.Contains("no unknown fields", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validator_OnAnApiDeploymentThatMayRunAsRoot_FailsNamingTheSetting()
    {
        var copy = Path.Combine(Path.GetTempPath(), "bastion-kubernetes-" + Guid.NewGuid().ToString("N"));
        try
        {
            CopyManifests(Path.GetDirectoryName(FindValidator())!, copy);
            var api = Path.Combine(copy, "api.yaml");
            var lines = await File.ReadAllLinesAsync(api);
            Assert.Contains(lines, line => line.Trim() == "runAsNonRoot: true");
            await File.WriteAllLinesAsync(api, lines.Where(line => line.Trim() != "runAsNonRoot: true"));

            var (exitCode, text) = await RunValidatorAsync(copy);

            Assert.Equal(1, exitCode);
            Assert.Contains("FAIL  kustomization .: Deployment bastion-api container silo: runAsNonRoot must be true", text, StringComparison.Ordinal);
            Assert.DoesNotContain("bastion-worker container silo: runAsNonRoot", text, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(copy))
            {
                Directory.Delete(copy, recursive: true);
            }
        }
    }

    private async Task<(int ExitCode, string Output)> RunValidatorAsync(string? manifests)
    {
        var validator = FindValidator();
        Assert.True(Directory.Exists(Path.Combine(validator, "node_modules", "kubernetes-models")), $"deploy/kubernetes/validate/node_modules is missing. {InstallHint}");
        var start = new ProcessStartInfo("node", manifests is null ? ["validate.mjs"] : ["validate.mjs", manifests])
        {
            WorkingDirectory = validator,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process node;
        try
        {
            node = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            Assert.Fail($"node cannot be started ({exception.Message}). Install Node.js 20 or later. {InstallHint}");
            throw;
        }

        using (node)
        {
            var stdout = node.StandardOutput.ReadToEndAsync();
            var stderr = node.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            try
            {
                await node.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                node.Kill(entireProcessTree: true);
                Assert.Fail("validate.mjs did not finish within 2 minutes.");
            }

            var text = await stdout + await stderr;
            output.WriteLine(text);
            return (node.ExitCode, text);
        }
    }

    /// <summary>The manifests and overlays, without the validator and its packages.</summary>
    private static void CopyManifests(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*.yaml"))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (var directory in Directory.GetDirectories(from).Where(d => Path.GetFileName(d) != "validate"))
        {
            CopyManifests(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }

    private static string FindValidator()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "deploy", "kubernetes", "validate");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"deploy/kubernetes/validate is not found above {AppContext.BaseDirectory}.");
    }
}
