using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Security;

/// <summary>
/// A development certificate authority and a loopback server certificate it signs, kept under the
/// data directory so clients can trust the CA file once. The server key file is mode 0600.
/// </summary>
public static class DevelopmentCertificate
{
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(30);

    /// <summary>Loads the server certificate from <paramref name="directory"/>, creating or renewing it when needed.</summary>
    public static (X509Certificate2 Server, string CaFile) LoadOrCreate(string directory, TimeProvider time)
    {
        Directory.CreateDirectory(directory);
        var caFile = Path.Combine(directory, "ca.pem");
        var certificateFile = Path.Combine(directory, "server.pem");
        var keyFile = Path.Combine(directory, "server-key.pem");
        var now = time.GetUtcNow();
        if (File.Exists(caFile) && File.Exists(certificateFile) && File.Exists(keyFile))
        {
            var existing = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
            if (existing.NotAfter.ToUniversalTime() - now.UtcDateTime > RenewBefore)
            {
                return (existing, caFile);
            }

            existing.Dispose();
        }

        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Bastion Development CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(2));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        using var server = serverRequest.Create(ca, now.AddMinutes(-5), now.AddYears(1), RandomNumberGenerator.GetBytes(16));

        WriteFile(keyFile, serverKey.ExportPkcs8PrivateKeyPem(), secret: true);
        WriteFile(certificateFile, server.ExportCertificatePem(), secret: false);
        WriteFile(caFile, ca.ExportCertificatePem(), secret: false);
        return (X509Certificate2.CreateFromPemFile(certificateFile, keyFile), caFile);
    }

    internal static void WriteFile(string path, string contents, bool secret)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = secret
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }

        var temporary = path + ".tmp";
        using (var writer = new StreamWriter(new FileStream(temporary, options)))
        {
            writer.Write(contents);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
