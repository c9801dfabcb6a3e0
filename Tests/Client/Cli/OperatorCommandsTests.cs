using Bastion.Cli;
using Bastion.Tests.Silo;
using Bastion.Tests.Silo.Cluster;

namespace Bastion.Tests.Client.Cli;

/// <summary>The <c>bastion</c> operator commands against a real silo, through the client library.</summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class OperatorCommandsTests(SiloFixture fixture)
{
    [Fact]
    public async Task Commands_ManageAUserAndShowTheCluster()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var operator_ = ServiceKeyPair.Create(directory, "svc-cli");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(operator_));
        await silo.CreateUserWithKeyAsync(operator_.Name, "admin");
        await using var host = await ServiceClientHost.StartAsync(silo, operator_);

        Assert.Equal(0, (await RunAsync(host, "users", "create", "dana", "--role", "user")).Code);
        var issued = await RunAsync(host, "keys", "issue", "dana", "--label", "laptop");
        Assert.Equal(0, issued.Code);
        var apiKey = issued.Output.Split('\n').Single(line => line.StartsWith("api_key: ", StringComparison.Ordinal))["api_key: ".Length..].Trim();
        using (var me = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", apiKey)))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, me.StatusCode);
        }

        Assert.Equal(0, (await RunAsync(host, "roles", "set", "dana", "--role", "user", "--role", "data-scientist")).Code);
        var limits = await RunAsync(host, "limits", "set", "dana", "--concurrency", "2", "--requests", "10", "--window-seconds", "60");
        Assert.Contains("concurrency: 2", limits.Output, StringComparison.Ordinal);
        Assert.Equal(0, (await RunAsync(host, "suspend", "dana")).Code);
        var shown = await RunAsync(host, "users", "show", "dana");
        Assert.Contains("suspended: True", shown.Output, StringComparison.Ordinal);
        Assert.Contains("roles: user,data-scientist", shown.Output, StringComparison.Ordinal);
        Assert.Equal(0, (await RunAsync(host, "resume", "dana")).Code);
        Assert.Equal(0, (await RunAsync(host, "revoke-tokens", "dana")).Code);

        var status = await RunAsync(host, "status");
        Assert.Contains("1 worker silo(s)", status.Output, StringComparison.Ordinal);

        var missing = await RunAsync(host, "users", "show", "nobody");
        Assert.Equal(2, missing.Code);
        Assert.Contains("NotFound", missing.Errors, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Output, string Errors)> RunAsync(ServiceClientHost host, params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var code = await OperatorCommands.Build(() => Task.FromResult(host.Client), output, errors).Parse(args).InvokeAsync();
        return (code, output.ToString(), errors.ToString());
    }
}
