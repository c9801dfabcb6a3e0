using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bastion.Client.Tls;

namespace Bastion.Security;

/// <summary>
/// Issues cluster CAs and the two kinds of cluster certificate, for the development cluster and for
/// tests; production certificates come from the operator's own CA (docs/cluster-tls.md).
/// </summary>
internal static class ClusterCertificateIssuer
{
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    /// <summary>A self-signed CA, with its private key.</summary>
    public static X509Certificate2 CreateAuthority(string name, DateTimeOffset now, TimeSpan lifetime)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(now.AddMinutes(-5), now + lifetime);
    }

    /// <summary>
    /// A certificate of <paramref name="kind"/> signed by <paramref name="authority"/>, with its private
    /// key. A silo certificate serves both TLS roles (it accepts and opens silo connections).
    /// </summary>
    public static X509Certificate2 Issue(X509Certificate2 authority, ClusterCertificateKind kind, string service, DateTimeOffset now, TimeSpan lifetime)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(
            new X500DistinguishedName(kind == ClusterCertificateKind.Silo ? "CN=bastion-silo" : $"CN=bastion-client-{service}"), key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri(kind == ClusterCertificateKind.Silo ? ClusterCertificates.SiloUri : ClusterCertificates.ClientUriPrefix + service));
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            kind == ClusterCertificateKind.Silo ? [ServerAuthentication, ClientAuthentication] : new OidCollection { ClientAuthentication }, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        using var certificate = request.Create(authority, now.AddMinutes(-5), now + lifetime, RandomNumberGenerator.GetBytes(16));
        return certificate.CopyWithPrivateKey(key);
    }

    /// <summary>Writes the certificate and its private key (mode 0600) as PEM files, each replaced atomically.</summary>
    public static void WriteFiles(X509Certificate2 certificate, string certificateFile, string keyFile)
    {
        using var key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("The certificate has no EC private key.", nameof(certificate));
        DevelopmentCertificate.WriteFile(keyFile, key.ExportPkcs8PrivateKeyPem(), secret: true);
        DevelopmentCertificate.WriteFile(certificateFile, certificate.ExportCertificatePem(), secret: false);
    }
}
