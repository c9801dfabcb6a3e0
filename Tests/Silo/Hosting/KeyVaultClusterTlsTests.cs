using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Azure.Security.KeyVault.Secrets;
using Bastion.Client.Tls;
using Bastion.Hosting;
using Bastion.Security;
using Bastion.Tests.Silo.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// Silos whose cluster certificate comes from Key Vault: a stand-in vault over HTTPS read with the real
/// <see cref="SecretClient"/> (the one the key provider uses), real silos, mutual TLS over loopback sockets.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class KeyVaultClusterTlsTests(SiloFixture fixture) : IDisposable
{
    private const string Name = "bastion-silo";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-vault-tls-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Cluster_FormsWithVaultCertificates_AndNewConnectionsPresentARenewalWithoutARestart_ButNotOneThatDoesNotFit()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        vault.AddBastionKeys();
        using var certificates = new VaultClusterCertificates(Path.Combine(_directory, "cluster"));
        using var foreign = new VaultClusterCertificates(Path.Combine(_directory, "foreign"), "Foreign CA");
        using var peer = certificates.Issue(ClusterCertificateKind.Silo);
        var now = DateTimeOffset.UtcNow;
        using var original = certificates.AddTo(vault, Name, now.AddHours(-3));
        var cluster = await fixture.CreateClusterAsync(Settings(vault, certificates));
        await using var first = await StartMemberAsync(cluster, "first", vault);
        var siloPort = first.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress.Endpoint;
        var credentials = first.Services.GetRequiredService<ClusterCredentials>();
        var refused = new List<string>();
        credentials.CertificateRefused += refused.Add;
        Assert.Equal(original.SerialNumber, (await PresentedAsync(siloPort, peer)).SerialNumber);

        // Renewed in the vault; the first silo takes it up at its next refresh, without a restart.
        using var renewed = certificates.AddTo(vault, Name, now.AddHours(-2));
        await first.Services.GetRequiredService<KeyVaultClusterCertificate>().RefreshAsync(CancellationToken.None);
        Assert.Equal(renewed.SerialNumber, (await PresentedAsync(siloPort, peer)).SerialNumber);

        // A second silo reads the renewal at its start and joins over new connections, both ends on vault certificates.
        await using (var second = await StartMemberAsync(cluster, "second", vault))
        {
            Assert.Equal(2, second.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values.Count(member => member.Status == SiloStatus.Active));
            Assert.Equal(renewed.SerialNumber, second.Services.GetRequiredService<ClusterCredentials>().Certificate.SerialNumber);
        }

        // Versions that do not fit — a client certificate, a silo certificate of another CA — are not taken up.
        using var wrongKind = certificates.AddTo(vault, Name, now.AddHours(-1), ClusterCertificateKind.Client);
        await first.Services.GetRequiredService<KeyVaultClusterCertificate>().RefreshAsync(CancellationToken.None);
        await first.Services.GetRequiredService<KeyVaultClusterCertificate>().RefreshAsync(CancellationToken.None);
        Assert.Equal(renewed.SerialNumber, (await PresentedAsync(siloPort, peer)).SerialNumber);
        using var otherCa = foreign.AddTo(vault, Name, now);
        await first.Services.GetRequiredService<KeyVaultClusterCertificate>().RefreshAsync(CancellationToken.None);
        Assert.Equal(renewed.SerialNumber, (await PresentedAsync(siloPort, peer)).SerialNumber);
        Assert.Equal(2, refused.Count);
    }

    [Theory]
    [InlineData("wrong-kind")]
    [InlineData("other-ca")]
    [InlineData("missing")]
    public async Task Silo_VaultCertificateThatDoesNotFit_DoesNotStartAndNamesTheSetting(string problem)
    {
        await using var vault = await StandInKeyVault.StartAsync();
        vault.AddBastionKeys();
        using var certificates = new VaultClusterCertificates(Path.Combine(_directory, "cluster"));
        using var foreign = new VaultClusterCertificates(Path.Combine(_directory, "foreign"), "Foreign CA");
        using var stored = problem switch
        {
            "wrong-kind" => certificates.AddTo(vault, Name, DateTimeOffset.UtcNow, ClusterCertificateKind.Client),
            "other-ca" => foreign.AddTo(vault, Name, DateTimeOffset.UtcNow),
            _ => null,
        };
        var (database, directory) = await fixture.CreateDatabaseAsync();
        await using var app = await BastionApplication.BuildAsync(["--environment=Development"], builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(Settings(vault, certificates))
            {
                ["ConnectionStrings:Bastion"] = database.State,
                ["ConnectionStrings:BastionKeys"] = database.KeyStore,
                ["Bastion:Node:DataDirectory"] = directory,
            });
            builder.Services.AddSingleton(vault.CreateClient());
        });

        var refused = await Assert.ThrowsAnyAsync<Exception>(() => app.StartAsync());

        Assert.True(refused is OptionsValidationException or StartupException, refused.ToString());
        Assert.Contains("Bastion:Cluster:Tls:KeyVaultCertificate", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Bastion:Cluster:Tls:CertificateFile", "Bastion:Cluster:Tls:CertificateFile")]
    [InlineData("Bastion:Keys:Provider", "Bastion:Keys:Provider")]
    public async Task Build_KeyVaultCertificateBesideFilesOrWithoutTheKeyVaultProvider_RefusesNamingTheSettings(string setting, string named)
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Bastion"] = database.State,
            ["ConnectionStrings:BastionKeys"] = database.KeyStore,
            ["Bastion:Node:DataDirectory"] = directory,
            ["Bastion:Keys:Provider"] = "KeyVault",
            ["Bastion:Keys:KeyVault:VaultUri"] = "https://bastion-test.vault.azure.net/",
            ["Bastion:Cluster:Tls:KeyVaultCertificate"] = Name,
            ["Bastion:Cluster:Tls:CaFile"] = Path.Combine(directory, "ca.pem"),
            [setting] = setting == "Bastion:Keys:Provider" ? "Development" : Path.Combine(directory, "silo.pem"),
        };

        var refused = await Assert.ThrowsAsync<StartupException>(async () =>
        {
            await using var app = await BastionApplication.BuildAsync(["--environment=Development"], builder => builder.Configuration.AddInMemoryCollection(settings));
        });

        Assert.Contains("Bastion:Cluster:Tls:KeyVaultCertificate", refused.Message, StringComparison.Ordinal);
        Assert.Contains(named, refused.Message, StringComparison.Ordinal);
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

    private static Dictionary<string, string?> Settings(StandInKeyVault vault, VaultClusterCertificates certificates) => new()
    {
        ["Bastion:Keys:Provider"] = "KeyVault",
        ["Bastion:Keys:KeyVault:VaultUri"] = vault.VaultUri.ToString(),
        ["Bastion:Keys:KeyVault:DisableChallengeResourceVerification"] = "true",
        ["Bastion:Cluster:Tls:KeyVaultCertificate"] = Name,
        ["Bastion:Cluster:Tls:CaFile"] = certificates.CaFile,
    };

    /// <summary>
    /// Member <paramref name="name"/> of <paramref name="cluster"/> (as <see cref="TestCluster.StartSiloAsync"/>) whose key
    /// provider, and so its cluster certificate, read the stand-in vault: the one <see cref="SecretClient"/> they share.
    /// </summary>
    private static Task<TestSilo> StartMemberAsync(TestCluster cluster, string name, StandInKeyVault vault) =>
        TestSilo.StartAsync(cluster.Database, Directory.CreateDirectory($"{cluster.Directory}-{name}").FullName, cluster.Settings,
            builder => builder.Services.AddSingleton(vault.CreateClient()));

    /// <summary>The certificate the silo presents on a new TLS connection to <paramref name="endpoint"/>.</summary>
    private static async Task<X509Certificate2> PresentedAsync(IPEndPoint endpoint, X509Certificate2 certificate)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        using var socket = new TcpClient();
        await socket.ConnectAsync(endpoint, timeout.Token);
        await using var tls = new SslStream(socket.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "bastion-silo",
            ClientCertificates = [certificate],
            ApplicationProtocols = [new SslApplicationProtocol("Orleans1")],
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, timeout.Token);
        return new X509Certificate2(tls.RemoteCertificate!);
    }
}
