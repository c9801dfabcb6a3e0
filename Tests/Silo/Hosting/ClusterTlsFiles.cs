using System.Security.Cryptography.X509Certificates;
using Bastion.Client.Tls;
using Bastion.Security;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>A test cluster CA that issues silo and client certificates as PEM files in a directory.</summary>
public sealed class ClusterTlsFiles : IDisposable
{
    private readonly X509Certificate2 _authority;

    public ClusterTlsFiles(string directory, string name = "Test Cluster CA")
    {
        Directory = System.IO.Directory.CreateDirectory(directory).FullName;
        _authority = ClusterCertificateIssuer.CreateAuthority(name, DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        CaFile = Path.Combine(Directory, "ca.pem");
        File.WriteAllText(CaFile, _authority.ExportCertificatePem());
    }

    public string Directory { get; }

    public string CaFile { get; }

    /// <summary>Issues a certificate and writes it as <c>{name}.pem</c> and <c>{name}-key.pem</c>; returns it with its key.</summary>
    public X509Certificate2 Issue(ClusterCertificateKind kind, string name, string service = "test-service")
    {
        var certificate = ClusterCertificateIssuer.Issue(_authority, kind, service, DateTimeOffset.UtcNow, TimeSpan.FromDays(7));
        ClusterCertificateIssuer.WriteFiles(certificate, CertificateFile(name), KeyFile(name));
        return certificate;
    }

    public string CertificateFile(string name) => Path.Combine(Directory, name + ".pem");

    public string KeyFile(string name) => Path.Combine(Directory, name + "-key.pem");

    public ClusterTlsOptions Options(string name) => new() { CertificateFile = CertificateFile(name), KeyFile = KeyFile(name), CaFile = CaFile };

    /// <summary>Silo settings that point <c>Bastion:Cluster:Tls</c> at certificate <paramref name="name"/>.</summary>
    public Dictionary<string, string?> SiloSettings(string name) => new()
    {
        ["Bastion:Cluster:Tls:CertificateFile"] = CertificateFile(name),
        ["Bastion:Cluster:Tls:KeyFile"] = KeyFile(name),
        ["Bastion:Cluster:Tls:CaFile"] = CaFile,
    };

    public void Dispose() => _authority.Dispose();
}
