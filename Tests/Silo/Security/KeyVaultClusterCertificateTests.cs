using System.Security.Cryptography.X509Certificates;
using Bastion.Client.Tls;
using Bastion.Hosting;
using Bastion.Security;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Security;

/// <summary>The silo certificate from a stand-in vault over HTTPS, read with the real <c>SecretClient</c>.</summary>
public sealed class KeyVaultClusterCertificateTests : IDisposable
{
    private const string Name = "bastion-silo";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-vault-certificate-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    [Fact]
    public async Task Start_Pkcs12WithItsChain_PresentsTheLeafWithItsKey()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        using var cluster = new VaultClusterCertificates(_directory);
        using var issued = cluster.AddTo(vault, Name, DateTimeOffset.UtcNow.AddHours(-1), pkcs12: true);
        using var certificate = Create(vault, cluster);

        await certificate.StartAsync(CancellationToken.None);
        try
        {
            Assert.Equal(issued.SerialNumber, certificate.Credentials.Certificate.SerialNumber);
            Assert.True(certificate.Credentials.Certificate.HasPrivateKey);
        }
        finally
        {
            await certificate.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task RefreshLoop_OnTheKeyProvidersInterval_TakesUpTheLatestEnabledVersion_AndReReadsNothingElse()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        using var cluster = new VaultClusterCertificates(_directory);
        var now = DateTimeOffset.UtcNow;
        using var first = cluster.AddTo(vault, Name, now.AddHours(-2));
        using var certificate = Create(vault, cluster);
        await certificate.StartAsync(CancellationToken.None);
        try
        {
            var reloaded = new TaskCompletionSource<X509Certificate2>(TaskCreationOptions.RunContinuationsAsynchronously);
            certificate.Credentials.CertificateReloaded += renewed => reloaded.TrySetResult(renewed);
            Assert.Equal(first.SerialNumber, certificate.Credentials.Certificate.SerialNumber);

            using var renewed = cluster.AddTo(vault, Name, now.AddHours(-1));
            using var disabled = cluster.Issue(ClusterCertificateKind.Silo);
            cluster.AddTo(vault, Name, disabled, now, enabled: false);
            var reads = vault.SecretReads;
            _time.Advance(new KeyVaultOptions().RefreshInterval);

            Assert.Equal(renewed.SerialNumber, (await reloaded.Task.WaitAsync(Timeout)).SerialNumber);
            Assert.Equal(renewed.SerialNumber, certificate.Credentials.Certificate.SerialNumber);
            // Only the new version's value was fetched; a refresh that finds nothing new fetches none.
            Assert.Equal(reads + 1, vault.SecretReads);
            await certificate.RefreshAsync(CancellationToken.None);
            Assert.Equal(reads + 1, vault.SecretReads);
        }
        finally
        {
            await certificate.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Refresh_VersionThatIsNoCertificate_IsRefusedOnce_WithoutItsValue()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        using var cluster = new VaultClusterCertificates(_directory);
        using var first = cluster.AddTo(vault, Name, DateTimeOffset.UtcNow.AddHours(-1));
        using var certificate = Create(vault, cluster);
        await certificate.StartAsync(CancellationToken.None);
        try
        {
            var refused = new List<string>();
            certificate.Credentials.CertificateRefused += refused.Add;
            // Random bytes in a PEM frame: shaped like a key, but none; the refusal must not echo them.
            var body = System.Security.Cryptography.RandomNumberGenerator.GetBytes(24);
            var garbage = new string(System.Security.Cryptography.PemEncoding.Write("PRIVATE KEY", body));
            vault.AddVersion(Name, garbage, new Dictionary<string, string>(), DateTimeOffset.UtcNow, contentType: VaultClusterCertificates.PemContentType);

            await certificate.RefreshAsync(CancellationToken.None);
            await certificate.RefreshAsync(CancellationToken.None);

            Assert.Equal(first.SerialNumber, certificate.Credentials.Certificate.SerialNumber);
            var reason = Assert.Single(refused);
            Assert.Contains(Name, reason, StringComparison.Ordinal);
            Assert.DoesNotContain(Convert.ToBase64String(body), reason, StringComparison.Ordinal);
        }
        finally
        {
            await certificate.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Start_VaultUnreachable_NamesTheSetting()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        using var cluster = new VaultClusterCertificates(_directory);
        using var certificate = Create(vault, cluster);
        vault.Unreachable = true;

        var refused = await Assert.ThrowsAsync<StartupException>(() => certificate.StartAsync(CancellationToken.None));

        Assert.Contains("Bastion:Cluster:Tls:KeyVaultCertificate", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Key Vault Secrets User", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_OnlyADisabledVersion_NamesTheSetting()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        using var cluster = new VaultClusterCertificates(_directory);
        using var disabled = cluster.Issue(ClusterCertificateKind.Silo);
        cluster.AddTo(vault, Name, disabled, DateTimeOffset.UtcNow, enabled: false);
        using var certificate = Create(vault, cluster);

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => certificate.StartAsync(CancellationToken.None));

        Assert.Contains("Bastion:Cluster:Tls:KeyVaultCertificate", refused.Message, StringComparison.Ordinal);
        Assert.Contains("no enabled version", refused.Message, StringComparison.Ordinal);
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

    private KeyVaultClusterCertificate Create(StandInKeyVault vault, VaultClusterCertificates cluster) => new(
        vault.CreateClient(),
        Name,
        new KeyVaultOptions { VaultUri = vault.VaultUri, DisableChallengeResourceVerification = true },
        new ClusterTlsOptions { CaFile = cluster.CaFile },
        _time,
        NullLogger<KeyVaultClusterCertificate>.Instance);
}
