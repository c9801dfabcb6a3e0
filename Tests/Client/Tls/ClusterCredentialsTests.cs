using System.Net.Security;
using Bastion.Client.Tls;
using Bastion.Tests.Silo.Hosting;
using Microsoft.Extensions.Options;

namespace Bastion.Tests.Client.Tls;

public sealed class ClusterCredentialsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-credentials-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public void Load_ClientCertificate_ReadsItsKindAndService()
    {
        using var cluster = new ClusterTlsFiles(_directory);
        using var issued = cluster.Issue(ClusterCertificateKind.Client, "client", service: "billing");

        var credentials = ClusterCredentials.Load(cluster.Options("client"), ClusterCertificateKind.Client, "Bastion:Client:Tls");

        Assert.Equal(issued.SerialNumber, credentials.Certificate.SerialNumber);
        Assert.Equal(ClusterCertificateKind.Client, ClusterCertificates.KindOf(credentials.Certificate));
        Assert.Equal("billing", ClusterCertificates.ServiceOf(credentials.Certificate));
    }

    [Fact]
    public void PeerValidator_AcceptsOnlyTheExpectedKindFromThePinnedCa()
    {
        using var cluster = new ClusterTlsFiles(Path.Combine(_directory, "cluster"));
        using var foreign = new ClusterTlsFiles(Path.Combine(_directory, "foreign"), "Foreign CA");
        using var silo = cluster.Issue(ClusterCertificateKind.Silo, "silo");
        using var client = cluster.Issue(ClusterCertificateKind.Client, "client");
        using var foreignClient = foreign.Issue(ClusterCertificateKind.Client, "client");
        var credentials = ClusterCredentials.Load(cluster.Options("silo"), ClusterCertificateKind.Silo, "Bastion:Cluster:Tls");
        var gateway = credentials.PeerValidator(ClusterCertificateKind.Client, peerIsServer: false);
        var siloPort = credentials.PeerValidator(ClusterCertificateKind.Silo, peerIsServer: false);

        Assert.True(gateway(client, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(gateway(silo, null, SslPolicyErrors.None));
        Assert.False(gateway(foreignClient, null, SslPolicyErrors.None));
        Assert.True(siloPort(silo, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(siloPort(client, null, SslPolicyErrors.None));
        // A client certificate lacks the server EKU, so it cannot pose as a gateway to another client either.
        Assert.False(credentials.PeerValidator(ClusterCertificateKind.Client, peerIsServer: true)(client, null, SslPolicyErrors.None));
    }

    [Fact]
    public void Load_MissingCaFile_NamesTheSetting()
    {
        using var cluster = new ClusterTlsFiles(_directory);
        using var issued = cluster.Issue(ClusterCertificateKind.Client, "client");
        var options = cluster.Options("client");
        options.CaFile = null;

        var exception = Assert.Throws<OptionsValidationException>(() => ClusterCredentials.Load(options, ClusterCertificateKind.Client, "Bastion:Client:Tls"));

        Assert.Contains("Bastion:Client:Tls:CaFile", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CertificateOfAnotherCa_NamesTheCertificateFile()
    {
        using var cluster = new ClusterTlsFiles(Path.Combine(_directory, "cluster"));
        using var foreign = new ClusterTlsFiles(Path.Combine(_directory, "foreign"), "Foreign CA");
        using var issued = foreign.Issue(ClusterCertificateKind.Client, "client");
        var options = foreign.Options("client");
        options.CaFile = cluster.CaFile;

        var exception = Assert.Throws<OptionsValidationException>(() => ClusterCredentials.Load(options, ClusterCertificateKind.Client, "Bastion:Client:Tls"));

        Assert.Contains("Bastion:Client:Tls:CertificateFile", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Certificate_AfterTheFilesAreReplaced_IsTheNewOne_AndAWrongKindIsNotTakenUp()
    {
        using var cluster = new ClusterTlsFiles(_directory);
        using var first = cluster.Issue(ClusterCertificateKind.Client, "client");
        var credentials = ClusterCredentials.Load(cluster.Options("client"), ClusterCertificateKind.Client, "Bastion:Client:Tls");
        var reloaded = new List<string>();
        var refused = new List<string>();
        credentials.CertificateReloaded += certificate => reloaded.Add(certificate.SerialNumber);
        credentials.CertificateRefused += refused.Add;

        using var renewed = cluster.Issue(ClusterCertificateKind.Client, "client");
        Assert.Equal(renewed.SerialNumber, credentials.Certificate.SerialNumber);
        Assert.Equal([renewed.SerialNumber], reloaded);

        using var wrongKind = cluster.Issue(ClusterCertificateKind.Silo, "client");
        Assert.Equal(renewed.SerialNumber, credentials.Certificate.SerialNumber);
        Assert.Equal(renewed.SerialNumber, credentials.Certificate.SerialNumber);
        Assert.Single(refused);
        Assert.Single(reloaded);
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
}
