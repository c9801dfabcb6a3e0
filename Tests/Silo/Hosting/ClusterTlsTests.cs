using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Bastion.Client.Tls;
using Bastion.Cluster;
using Bastion.Generation;
using Bastion.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// Mutual TLS on a real silo's ports: Orleans clients and raw TLS connections over loopback sockets.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ClusterTlsTests(SiloFixture fixture) : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-cluster-tls-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Gateway_AcceptsClientCertificatesOfTheClusterCaOnly()
    {
        using var cluster = new ClusterTlsFiles(Path.Combine(_directory, "cluster"));
        using var silo = cluster.Issue(ClusterCertificateKind.Silo, "silo");
        using var client = cluster.Issue(ClusterCertificateKind.Client, "client");
        using var foreign = new ClusterTlsFiles(Path.Combine(_directory, "foreign"), "Foreign CA");
        using var foreignClient = foreign.Issue(ClusterCertificateKind.Client, "client");
        await using var node = await StartSiloAsync(cluster.SiloSettings("silo"));

        // The client library's way: a client certificate from the files, the gateway pinned to the CA.
        Assert.Equal(ServiceRefusal.NotAuthenticated, await CallGrainAsync(node, builder => builder.UseBastionClusterTls(cluster.Options("client"))));
        // The same raw Orleans TLS client that is refused below gets in with the right certificate.
        await CallGrainAsync(node, builder => builder.UseTls(Presenting(client)));

        await Assert.ThrowsAnyAsync<Exception>(() => CallGrainAsync(node, builder => builder.UseTls(Presenting(null))));
        await Assert.ThrowsAnyAsync<Exception>(() => CallGrainAsync(node, builder => builder.UseTls(Presenting(foreignClient))));
        await Assert.ThrowsAnyAsync<Exception>(() => CallGrainAsync(node, builder => builder.UseTls(Presenting(silo))));
    }

    [Fact]
    public async Task SiloPort_AcceptsSiloCertificatesOfTheClusterCaOnly()
    {
        using var files = new ClusterTlsFiles(Path.Combine(_directory, "cluster"));
        using var silo = files.Issue(ClusterCertificateKind.Silo, "silo");
        using var otherSilo = files.Issue(ClusterCertificateKind.Silo, "other-silo");
        using var client = files.Issue(ClusterCertificateKind.Client, "client");
        using var foreign = new ClusterTlsFiles(Path.Combine(_directory, "foreign"), "Foreign CA");
        using var foreignSilo = foreign.Issue(ClusterCertificateKind.Silo, "silo");
        var cluster = await fixture.CreateClusterAsync();
        await using var first = await cluster.StartSiloAsync("first", files.SiloSettings("silo"));

        // A second silo with a silo certificate of its own from the same CA joins.
        await using (var second = await cluster.StartSiloAsync("second", files.SiloSettings("other-silo")))
        {
            Assert.Equal(2, second.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active));
        }

        var siloPort = SiloAddressOf(first).Endpoint;
        Assert.True(await IsRefusedAsync(siloPort, client));
        Assert.True(await IsRefusedAsync(siloPort, foreignSilo));
        Assert.True(await IsRefusedAsync(siloPort, null));
    }

    [Fact]
    public async Task Silo_ConfiguredWithAClientCertificate_DoesNotStartAndNamesTheSetting()
    {
        using var cluster = new ClusterTlsFiles(Path.Combine(_directory, "cluster"));
        using var client = cluster.Issue(ClusterCertificateKind.Client, "client");

        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => StartSiloAsync(cluster.SiloSettings("client")));

        Assert.Contains("Bastion:Cluster:Tls:CertificateFile", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Silo_OutsideDevelopmentWithoutClusterCertificate_DoesNotStartAndNamesTheSetting()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();

        var exception = await Assert.ThrowsAsync<StartupException>(() => BastionApplication.BuildAsync(["--environment=Production"], builder =>
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Bastion"] = database.State,
                ["ConnectionStrings:BastionKeys"] = database.KeyStore,
                ["Bastion:Node:DataDirectory"] = directory,
                ["Bastion:Node:ClusterId"] = "production-" + Guid.NewGuid().ToString("N"),
                ["Bastion:Keys:Provider"] = "Development",
                ["Bastion:Keys:KeyringPath"] = Path.Combine(directory, "keyring.json"),
            })));

        Assert.Contains("Bastion:Cluster:Tls:CertificateFile", exception.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(directory, "cluster-tls")));
    }

    [Fact]
    public async Task DevelopmentSilo_AcceptsItsDevelopmentClientCertificate()
    {
        // The shared fixture silo runs on Development defaults: a cluster CA of its own under its data directory.
        var development = Path.Combine(fixture.Silo.DataDirectory, "cluster-tls");
        var options = new ClusterTlsOptions
        {
            CertificateFile = Path.Combine(development, "client.pem"),
            KeyFile = Path.Combine(development, "client-key.pem"),
            CaFile = Path.Combine(development, "ca.pem"),
        };

        Assert.Equal(ServiceRefusal.NotAuthenticated, await CallGrainAsync(fixture.Silo, builder => builder.UseBastionClusterTls(options)));
    }

    [Fact]
    public async Task RenewedCertificateFiles_AreServedOnTheNextConnection_WithoutARestart()
    {
        using var cluster = new ClusterTlsFiles(Path.Combine(_directory, "cluster"));
        using var first = cluster.Issue(ClusterCertificateKind.Silo, "silo");
        using var client = cluster.Issue(ClusterCertificateKind.Client, "client");
        await using var node = await StartSiloAsync(cluster.SiloSettings("silo"));
        var gateway = GatewayOf(node);
        Assert.Equal(first.SerialNumber, (await HandshakeAsync(gateway, client)).SerialNumber);

        using var renewed = cluster.Issue(ClusterCertificateKind.Silo, "silo");

        Assert.Equal(renewed.SerialNumber, (await HandshakeAsync(gateway, client)).SerialNumber);
        await CallGrainAsync(node, builder => builder.UseBastionClusterTls(cluster.Options("client")));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // Nothing was written.
        }
    }

    private async Task<TestSilo> StartSiloAsync(Dictionary<string, string?> settings)
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        return await TestSilo.StartAsync(database, directory, settings);
    }

    private static SiloAddress SiloAddressOf(TestSilo node) => node.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;

    private static IPEndPoint GatewayOf(TestSilo node) => node.Services.GetRequiredService<ILocalSiloDetails>().GatewayAddress!.Endpoint;

    /// <summary>Raw Orleans TLS options presenting <paramref name="certificate"/> (or none) and trusting any gateway.</summary>
    private static Action<TlsOptions> Presenting(X509Certificate2? certificate) => tls =>
    {
        tls.LocalCertificate = certificate;
        tls.ClientCertificateMode = RemoteCertificateMode.AllowCertificate;
        tls.AllowAnyRemoteCertificate();
    };

    /// <summary>
    /// Starts an Orleans client against the silo's gateway and calls a grain through it. The call carries no service
    /// token, so the silo's zero-trust filter refuses it (docs/zero-trust.md): that answer is the proof that the TLS
    /// connection was accepted and a message went both ways. A refused connection throws instead.
    /// </summary>
    private static async Task<ServiceRefusal> CallGrainAsync(TestSilo node, Action<IClientBuilder> configureTls)
    {
        var clusterOptions = node.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;
        using var host = new HostBuilder()
            .UseOrleansClient(client =>
            {
                client.UseStaticClustering(GatewayOf(node));
                client.Configure<ClusterOptions>(options =>
                {
                    options.ClusterId = clusterOptions.ClusterId;
                    options.ServiceId = clusterOptions.ServiceId;
                });
                // A refused client fails at once instead of retrying until its token cancels.
                client.UseConnectionRetryFilter((_, _) => Task.FromResult(false));
                configureTls(client);
            })
            .Build();
        using var timeout = new CancellationTokenSource(StartTimeout);
        await host.StartAsync(timeout.Token);
        try
        {
            var refused = await Assert.ThrowsAsync<ServiceRefusedException>(() =>
                host.Services.GetRequiredService<IClusterClient>().GetGrain<IWorkerLoadGrain>(IWorkerLoadGrain.Key).ReadAsync().WaitAsync(timeout.Token));
            return refused.Reason;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>A TLS handshake presenting <paramref name="certificate"/>; returns the certificate the silo presented.</summary>
    private static async Task<X509Certificate2> HandshakeAsync(IPEndPoint endpoint, X509Certificate2? certificate)
    {
        using var timeout = new CancellationTokenSource(StartTimeout);
        using var socket = new TcpClient();
        await socket.ConnectAsync(endpoint, timeout.Token);
        await using var tls = await AuthenticateAsync(socket, certificate, timeout.Token);
        return new X509Certificate2(tls.RemoteCertificate!);
    }

    /// <summary>
    /// Whether the silo refuses a connection presenting <paramref name="certificate"/>: the handshake
    /// fails, or (TLS 1.3 checks the client certificate after the client has finished) the silo
    /// closes the connection before it reads a byte from it. An accepted connection would wait for
    /// the Orleans preamble, which this client never sends.
    /// </summary>
    private static async Task<bool> IsRefusedAsync(IPEndPoint endpoint, X509Certificate2? certificate)
    {
        using var timeout = new CancellationTokenSource(StartTimeout);
        using var socket = new TcpClient();
        await socket.ConnectAsync(endpoint, timeout.Token);
        try
        {
            await using var tls = await AuthenticateAsync(socket, certificate, timeout.Token);
            return await tls.ReadAsync(new byte[1], timeout.Token) == 0;
        }
        catch (Exception exception) when (exception is AuthenticationException or IOException)
        {
            return true;
        }
    }

    private static async Task<SslStream> AuthenticateAsync(TcpClient socket, X509Certificate2? certificate, CancellationToken cancellationToken)
    {
        var tls = new SslStream(socket.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "bastion-silo",
            ClientCertificates = certificate is null ? null : [certificate],
            ApplicationProtocols = [new SslApplicationProtocol("Orleans1")],
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, cancellationToken);
        return tls;
    }
}
