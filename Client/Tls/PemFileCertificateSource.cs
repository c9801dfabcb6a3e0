using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Client.Tls;

/// <summary>A certificate and its unencrypted private key in two PEM files, renewed by replacing the files.</summary>
/// <param name="certificateFile">The certificate (PEM).</param>
/// <param name="keyFile">Its private key (PEM).</param>
public sealed class PemFileCertificateSource(string certificateFile, string keyFile) : IClusterCertificateSource
{
    /// <summary>
    /// A digest of both files' contents. Contents rather than modification times: file times are only
    /// as fine as the kernel's clock tick, so a renewal written right after a load could go unseen.
    /// The files are small and read once per new connection.
    /// </summary>
    public string Stamp
    {
        get
        {
            try
            {
                using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                digest.AppendData(File.ReadAllBytes(certificateFile));
                digest.AppendData(SHA256.HashData(File.ReadAllBytes(keyFile)));
                return Convert.ToHexString(digest.GetHashAndReset());
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                return "unreadable";
            }
        }
    }

    /// <inheritdoc/>
    public X509Certificate2 Load() => X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
}
