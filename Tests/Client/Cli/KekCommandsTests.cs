using Bastion.Cli;
using Bastion.Security;
using Bastion.Tests.Silo;
using Bastion.Tests.Silo.Cluster;

namespace Bastion.Tests.Client.Cli;

/// <summary><c>bastion keys kek</c> against a real silo on the development keyring: list, re-wrap with progress, retire.</summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class KekCommandsTests(SiloFixture fixture)
{
    [Fact]
    public async Task Kek_ListRewrapWaitRetire_OnTheDevelopmentKeyring()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var operator_ = ServiceKeyPair.Create(directory, "svc-kek-cli");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(operator_));
        await silo.CreateUserWithKeyAsync(operator_.Name, "admin");
        await using var host = await ServiceClientHost.StartAsync(silo, operator_);
        Assert.Equal(0, (await RunAsync(host, "users", "create", "kek-dana", "--role", "user")).Code);

        var listed = await RunAsync(host, "keys", "kek", "list");
        Assert.Equal(0, listed.Code);
        Assert.Matches(@"^version 1  data keys: [1-9][0-9]*  current\r?$", listed.Output.Split('\n')[0]);

        DevelopmentKeyring.AddKek(Path.Combine(directory, "keyring.json"));
        var inUse = await RunAsync(host, "keys", "kek", "retire", "1");
        Assert.Equal(2, inUse.Code);
        Assert.Contains("still wraps", inUse.Errors, StringComparison.Ordinal);
        var current = await RunAsync(host, "keys", "kek", "retire", "2");
        Assert.Equal(2, current.Code);
        Assert.Contains("current version", current.Errors, StringComparison.Ordinal);

        var rewrapped = await RunAsync(host, "keys", "kek", "rewrap", "--wait");
        Assert.Equal(0, rewrapped.Code);
        Assert.Contains("re-wrap started to KEK version 2", rewrapped.Output, StringComparison.Ordinal);
        Assert.Contains("done: no data key is left on a version below 2", rewrapped.Output, StringComparison.Ordinal);
        var after = await RunAsync(host, "keys", "kek", "list");
        Assert.Contains("version 1  data keys: 0", after.Output, StringComparison.Ordinal);
        Assert.Matches(@"version 2  data keys: [1-9][0-9]*  current", after.Output);

        var retired = await RunAsync(host, "keys", "kek", "retire", "1");
        Assert.Equal(0, retired.Code);
        Assert.Contains("KEK version 1 retired", retired.Output, StringComparison.Ordinal);
        var again = await RunAsync(host, "keys", "kek", "retire", "1");
        Assert.Equal(2, again.Code);
        Assert.Contains("NotFound", again.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("version 1 ", (await RunAsync(host, "keys", "kek", "list")).Output, StringComparison.Ordinal);

        // A second re-wrap finds nothing to move.
        var nothing = await RunAsync(host, "keys", "kek", "rewrap", "--wait");
        Assert.Equal(0, nothing.Code);
        Assert.Contains("0 data key(s) on older versions", nothing.Output, StringComparison.Ordinal);
    }

    internal static async Task<(int Code, string Output, string Errors)> RunAsync(
        ServiceClientHost? host, Func<Uri, Azure.Security.KeyVault.Secrets.SecretClient>? vaults, params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var code = await OperatorCommands.Build(
            () => Task.FromResult(host?.Client ?? throw new InvalidOperationException("this command should not reach the cluster")),
            output, errors, vaults, TimeSpan.FromMilliseconds(100)).Parse(args).InvokeAsync();
        return (code, output.ToString(), errors.ToString());
    }

    private static Task<(int Code, string Output, string Errors)> RunAsync(ServiceClientHost host, params string[] args) => RunAsync(host, null, args);
}
