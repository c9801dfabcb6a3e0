using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Client.Tls;

/// <summary>
/// A certificate and key read from PEM files, read again when either file changes, so that renewing
/// a certificate is replacing two files: the next connection presents the new one, open connections
/// keep theirs. A replacement that cannot be loaded yet (one file written, the other not) or that
/// <c>accept</c> refuses leaves the previous certificate in use until the pair is complete.
/// </summary>
public sealed class ReloadingCertificate
{
    private readonly Lock _gate = new();
    private readonly string _certificateFile;
    private readonly string _keyFile;
    private readonly Func<X509Certificate2, bool> _accept;
    private FileStamp _stamp;
    private X509Certificate2 _current;

    private ReloadingCertificate(string certificateFile, string keyFile, Func<X509Certificate2, bool> accept, X509Certificate2 current, FileStamp stamp)
    {
        _certificateFile = certificateFile;
        _keyFile = keyFile;
        _accept = accept;
        _current = current;
        _stamp = stamp;
    }

    /// <summary>The certificate to present on a new connection.</summary>
    public X509Certificate2 Current
    {
        get
        {
            var stamp = FileStamp.Of(_certificateFile, _keyFile);
            lock (_gate)
            {
                if (stamp != _stamp && TryLoad(_certificateFile, _keyFile) is { } loaded && _accept(loaded))
                {
                    // The previous certificate is not disposed: a handshake may still be using it.
                    _current = loaded;
                    _stamp = stamp;
                }

                return _current;
            }
        }
    }

    /// <summary>Loads the pair now; throws <see cref="CryptographicException"/> or <see cref="IOException"/> when it cannot.</summary>
    public static ReloadingCertificate Load(string certificateFile, string keyFile, Func<X509Certificate2, bool> accept)
    {
        var stamp = FileStamp.Of(certificateFile, keyFile);
        var certificate = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
        return new ReloadingCertificate(certificateFile, keyFile, accept, certificate, stamp);
    }

    private static X509Certificate2? TryLoad(string certificateFile, string keyFile)
    {
        try
        {
            return X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
        }
        catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private readonly record struct FileStamp(DateTime CertificateWritten, long CertificateLength, DateTime KeyWritten, long KeyLength)
    {
        public static FileStamp Of(string certificateFile, string keyFile)
        {
            var certificate = new FileInfo(certificateFile);
            var key = new FileInfo(keyFile);
            return new FileStamp(
                certificate.Exists ? certificate.LastWriteTimeUtc : default, certificate.Exists ? certificate.Length : -1,
                key.Exists ? key.LastWriteTimeUtc : default, key.Exists ? key.Length : -1);
        }
    }
}
