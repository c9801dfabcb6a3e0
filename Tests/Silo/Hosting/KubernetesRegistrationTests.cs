using System.Net;
using Bastion.Hosting;
using Bastion.Tests.Silo.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Hosting.Kubernetes;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// <c>Bastion:Kubernetes:Enabled</c> as deploy/kubernetes/ sets it: Orleans' Kubernetes hosting is wired in, the silo
/// advertises its pod's IP and keeps Bastion's cluster ids, and a pod without its downward-API variables refuses to start.
/// </summary>
[Collection("Postgres")]
public sealed class KubernetesRegistrationTests(PostgresFixture postgres) : IDisposable
{
    private const string PodIp = "10.244.3.17";
    private readonly string directory = Path.Combine(Path.GetTempPath(), "bastion-kubernetes-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Build_InKubernetes_NamesTheSiloAfterThePodAdvertisesItsIpAndKeepsBastionsClusterIds()
    {
        var settings = await PodSettingsAsync();
        settings["Bastion:Kubernetes:MaxAgents"] = "3";
        IServiceCollection? services = null;
        // Orleans reads the pod's variables from the environment itself, as in a pod; nothing else in the test run reads them.
        var variables = new[] { "POD_NAME", "POD_NAMESPACE", "POD_IP" };
        foreach (var variable in variables)
        {
            Environment.SetEnvironmentVariable(variable, settings[variable]);
            settings.Remove(variable);
        }

        try
        {
            await using var app = await BastionApplication.BuildAsync(["--environment=Development"], builder =>
            {
                services = builder.Services;
                builder.Configuration.AddInMemoryCollection(settings);
            });

            Assert.Equal("bastion-worker-7d9f8-abcde", app.Services.GetRequiredService<ILocalSiloDetails>().Name);
            var endpoints = app.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
            Assert.Equal(IPAddress.Parse(PodIp), endpoints.AdvertisedIPAddress);
            // Orleans' Kubernetes hosting listens on every address of the pod, at the ports Bastion:Node names.
            Assert.Equal(new IPEndPoint(IPAddress.Any, 11111), endpoints.SiloListeningEndpoint);
            Assert.Equal(new IPEndPoint(IPAddress.Any, 30000), endpoints.GatewayListeningEndpoint);
            var cluster = app.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;
            Assert.Equal(("prod", "bastion"), (cluster.ClusterId, cluster.ServiceId));
            // The pod watcher is registered (it calls the API server only once the silo starts), with Orleans' knobs bound.
            Assert.Contains(services!, d => d.ServiceType == typeof(ILifecycleParticipant<ISiloLifecycle>) && d.ImplementationType == typeof(KubernetesClusterAgent));
            Assert.Equal(3, app.Services.GetRequiredService<IOptions<KubernetesHostingOptions>>().Value.MaxAgents);
        }
        finally
        {
            foreach (var variable in variables)
            {
                Environment.SetEnvironmentVariable(variable, null);
            }
        }
    }

    [Fact]
    public async Task Build_WithoutTheKubernetesSetting_AddsNoPodWatcherAndAdvertisesTheConfiguredAddress()
    {
        var settings = await PodSettingsAsync();
        settings.Remove("Bastion:Kubernetes:Enabled");
        IServiceCollection? services = null;

        await using var app = await BastionApplication.BuildAsync(["--environment=Development"], builder =>
        {
            services = builder.Services;
            builder.Configuration.AddInMemoryCollection(settings);
        });

        Assert.DoesNotContain(services!, d => d.ImplementationType == typeof(KubernetesClusterAgent));
        Assert.Equal(IPAddress.Loopback, app.Services.GetRequiredService<IOptions<EndpointOptions>>().Value.AdvertisedIPAddress);
    }

    [Theory]
    [InlineData("POD_NAME")]
    [InlineData("POD_NAMESPACE")]
    [InlineData("POD_IP")]
    public async Task Build_InKubernetesWithoutAPodVariable_IsRefusedNamingTheVariable(string variable)
    {
        var settings = await PodSettingsAsync();
        settings.Remove(variable);

        var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync(settings));

        Assert.StartsWith($"{variable} is not set;", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ORLEANS_CLUSTER_ID", "staging", "ORLEANS_CLUSTER_ID ('staging') differs from Bastion:Node:ClusterId")]
    [InlineData("ORLEANS_SERVICE_ID", "other", "ORLEANS_SERVICE_ID ('other') differs from Bastion:Node:ServiceId")]
    [InlineData("Bastion:Node:ClusterId", "", "Bastion:Node:ClusterId is not set")]
    [InlineData("Bastion:Node:ClusterId", "prod/eu", "Bastion:Node:ClusterId ('prod/eu') must be a Kubernetes label value")]
    [InlineData("Bastion:Node:AdvertisedAddress", "10.0.0.9", "Bastion:Node:AdvertisedAddress ('10.0.0.9') differs from POD_IP")]
    [InlineData("Bastion:Node:GatewayPort", "0", "Bastion:Node:GatewayPort must be set")]
    [InlineData("POD_IP", "bastion-api-0", "POD_IP ('bastion-api-0') is not an IP address")]
    public async Task Build_InKubernetesWithAConflictingSetting_IsRefusedNamingIt(string key, string value, string expected)
    {
        var settings = await PodSettingsAsync();
        settings[key] = value;

        var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync(settings));

        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// What deploy/kubernetes/ gives a pod: the downward-API variables, fixed ports, and connection strings that name a
    /// password file (mounted from Key Vault) instead of holding the password.
    /// </summary>
    private async Task<Dictionary<string, string?>> PodSettingsAsync()
    {
        var state = await postgres.CreateMigratedDatabaseAsync();
        var keyStore = await postgres.CreateMigratedKeyStoreAsync();
        return new()
        {
            ["Bastion:Node:DataDirectory"] = Path.Combine(directory, "data"),
            ["Bastion:Kubernetes:Enabled"] = "true",
            ["POD_NAME"] = "bastion-worker-7d9f8-abcde",
            ["POD_NAMESPACE"] = "bastion",
            ["POD_IP"] = PodIp,
            ["Bastion:Node:ClusterId"] = "prod",
            ["Bastion:Node:SiloPort"] = "11111",
            ["Bastion:Node:GatewayPort"] = "30000",
            ["ConnectionStrings:Bastion"] = WithPassfile(state.RuntimeConnectionString),
            ["ConnectionStrings:BastionKeys"] = WithPassfile(keyStore.RuntimeConnectionString),
        };
    }

    private string WithPassfile(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        Directory.CreateDirectory(directory);
        var passfile = Path.Combine(directory, $"pgpass-{Guid.NewGuid():N}");
        // hostname:port:database:username:password, ':' and '\' escaped (the PostgreSQL password file format).
        File.WriteAllText(passfile, $"*:*:{builder.Database}:{builder.Username}:{builder.Password!.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(":", "\\:", StringComparison.Ordinal)}\n");
        builder.Password = null;
        builder.Passfile = passfile;
        return builder.ConnectionString;
    }

    private static async Task BuildAsync(Dictionary<string, string?> settings)
    {
        await using var app = await BastionApplication.BuildAsync(["--environment=Development"], builder => builder.Configuration.AddInMemoryCollection(settings));
    }

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
