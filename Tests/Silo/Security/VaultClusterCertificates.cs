using System.Security.Cryptography.X509Certificates;
using System.Text;
using Bastion.Client.Tls;
using Bastion.Security;

namespace Bastion.Tests.Silo.Security;

/// <summary>
/// A test cluster CA (its certificate in <see cref="CaFile"/>) whose certificates are added to a stand-in vault
/// the way Key Vault serves a certificate's secret: PEM (key, then the chain leaf first) or base64 PKCS#12.
/// </summary>
public sealed class VaultClusterCertificates : IDisposable
{
    public const string PemContentType = "application/x-pem-file";
    public const string Pkcs12ContentType = "application/x-pkcs12";

    private readonly X509Certificate2 _authority;

    public VaultClusterCertificates(string directory, string name = "Vault Test Cluster CA")
    {
        Directory.CreateDirectory(directory);
        _authority = ClusterCertificateIssuer.CreateAuthority(name, DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        CaFile = Path.Combine(directory, "ca.pem");
        File.WriteAllText(CaFile, _authority.ExportCertificatePem());
    }

    public string CaFile { get; }

    public X509Certificate2 Issue(ClusterCertificateKind kind, string service = "test-service") =>
        ClusterCertificateIssuer.Issue(_authority, kind, service, DateTimeOffset.UtcNow, TimeSpan.FromDays(7));

    /// <summary>Issues a certificate and adds it to <paramref name="vault"/> as the newest version of <paramref name="name"/>.</summary>
    public X509Certificate2 AddTo(StandInKeyVault vault, string name, DateTimeOffset createdOn, ClusterCertificateKind kind = ClusterCertificateKind.Silo, bool pkcs12 = false)
    {
        var certificate = Issue(kind);
        AddTo(vault, name, certificate, createdOn, pkcs12);
        return certificate;
    }

    /// <summary>Adds <paramref name="certificate"/> (with its key, and this CA as its chain) to <paramref name="vault"/>.</summary>
    public void AddTo(StandInKeyVault vault, string name, X509Certificate2 certificate, DateTimeOffset createdOn, bool pkcs12 = false, bool enabled = true)
    {
        string value;
        if (pkcs12)
        {
            var chain = new X509Certificate2Collection { certificate, X509CertificateLoader.LoadCertificate(_authority.RawData) };
            value = Convert.ToBase64String(chain.Export(X509ContentType.Pkcs12)!);
        }
        else
        {
            using var key = certificate.GetECDsaPrivateKey()!;
            value = new StringBuilder()
                .AppendLine(key.ExportPkcs8PrivateKeyPem())
                .AppendLine(certificate.ExportCertificatePem())
                .AppendLine(_authority.ExportCertificatePem())
                .ToString();
        }

        vault.AddVersion(name, value, new Dictionary<string, string>(), createdOn, enabled, pkcs12 ? Pkcs12ContentType : PemContentType);
    }

    public void Dispose() => _authority.Dispose();
}
