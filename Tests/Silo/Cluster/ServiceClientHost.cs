using Bastion.Client;
using Bastion.Client.Tls;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>A real Orleans external client (the client library's wiring) connected to a test silo's gateway port.</summary>
public sealed class ServiceClientHost : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly IHost _host;

    private ServiceClientHost(IHost host) => _host = host;

    public BastionClient Client => _host.Services.GetRequiredService<BastionClient>();

    public IClusterClient Cluster => _host.Services.GetRequiredService<IClusterClient>();

    public ServiceTokenIssuer Tokens => _host.Services.GetRequiredService<ServiceTokenIssuer>();

    public static async Task<ServiceClientHost> StartAsync(TestSilo silo, ServiceKeyPair service, Action<BastionClientOptions>? configure = null)
    {
        var endpoints = silo.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
        var cluster = silo.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;

        // The development client certificate of the silo's cluster CA (docs/cluster-tls.md).
        var tls = silo.Services.GetRequiredService<IConfiguration>()["Bastion:Cluster:Tls:DevelopmentDirectory"] ?? Path.Combine(silo.DataDirectory, "cluster-tls");
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddBastionClient(options =>
        {
            options.Gateways = [$"127.0.0.1:{endpoints.GatewayPort}"];
            options.ClusterId = cluster.ClusterId;
            options.ServiceId = cluster.ServiceId;
            options.ServiceName = service.Name;
            options.PrivateKeyFile = service.PrivateKeyFile;
            options.ConnectTimeout = TimeSpan.FromSeconds(20);
            options.Tls = new ClusterTlsOptions
            {
                CertificateFile = Path.Combine(tls, "client.pem"),
                KeyFile = Path.Combine(tls, "client-key.pem"),
                CaFile = Path.Combine(tls, "ca.pem"),
            };
            configure?.Invoke(options);
        });
        var host = builder.Build();
        using var timeout = new CancellationTokenSource(StartTimeout);
        await host.StartAsync(timeout.Token);
        return new ServiceClientHost(host);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await _host.StopAsync(timeout.Token);
        _host.Dispose();
    }
}
