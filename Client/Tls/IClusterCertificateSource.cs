using System.Security.Cryptography.X509Certificates;

namespace Bastion.Client.Tls;

/// <summary>
/// Where a cluster member's certificate and private key come from: PEM files
/// (<see cref="PemFileCertificateSource"/>) or, on a silo, a Key Vault secret. <see cref="ReloadingCertificate"/>
/// takes up whatever the source offers, once it fits.
/// </summary>
public interface IClusterCertificateSource
{
    /// <summary>
    /// A value that changes whenever the offered certificate does (a digest of the files, a vault version id).
    /// Read on every new connection, so it must be cheap.
    /// </summary>
    string Stamp { get; }

    /// <summary>The certificate, with its private key, that <see cref="Stamp"/> names.</summary>
    /// <exception cref="System.Security.Cryptography.CryptographicException">It cannot be loaded; the message never holds key material.</exception>
    /// <exception cref="IOException">A file cannot be read.</exception>
    X509Certificate2 Load();
}
