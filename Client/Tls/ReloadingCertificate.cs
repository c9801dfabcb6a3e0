using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Client.Tls;

/// <summary>
/// A certificate and key read from PEM files, loaded again when either file's contents change, so that renewing
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
    private FileStamp _refusedStamp;
    private X509Certificate2 _current;

    private ReloadingCertificate(string certificateFile, string keyFile, Func<X509Certificate2, bool> accept, X509Certificate2 current, FileStamp stamp)
    {
        _certificateFile = certificateFile;
        _keyFile = keyFile;
        _accept = accept;
        _current = current;
        _stamp = stamp;
    }

    /// <summary>Raised with the new certificate when changed files have been taken up.</summary>
    public event Action<X509Certificate2>? Reloaded;

    /// <summary>Raised (once per change of the files) with the reason changed files were not taken up.</summary>
    public event Action<string>? Refused;

    /// <summary>The certificate to present on a new connection.</summary>
    public X509Certificate2 Current
    {
        get
        {
            var stamp = FileStamp.Of(_certificateFile, _keyFile);
            X509Certificate2? reloaded = null;
            string? refused = null;
            X509Certificate2 current;
            lock (_gate)
            {
                if (stamp != _stamp && stamp != _refusedStamp)
                {
                    var (loaded, problem) = TryLoad(_certificateFile, _keyFile);
                    if (loaded is not null && _accept(loaded))
                    {
                        // The previous certificate is not disposed: a handshake may still be using it.
                        _current = reloaded = loaded;
                        _stamp = stamp;
                    }
                    else
                    {
                        _refusedStamp = stamp;
                        refused = problem ?? "the certificate is not of the expected kind, not valid now, or not issued by the cluster CA";
                    }
                }

                current = _current;
            }

            if (reloaded is not null)
            {
                Reloaded?.Invoke(reloaded);
            }
            else if (refused is not null)
            {
                Refused?.Invoke(refused);
            }

            return current;
        }
    }

    /// <summary>Loads the pair now; throws <see cref="CryptographicException"/> or <see cref="IOException"/> when it cannot.</summary>
    public static ReloadingCertificate Load(string certificateFile, string keyFile, Func<X509Certificate2, bool> accept)
    {
        var stamp = FileStamp.Of(certificateFile, keyFile);
        var certificate = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
        return new ReloadingCertificate(certificateFile, keyFile, accept, certificate, stamp);
    }

    private static (X509Certificate2? Certificate, string? Problem) TryLoad(string certificateFile, string keyFile)
    {
        try
        {
            return (X509Certificate2.CreateFromPemFile(certificateFile, keyFile), null);
        }
        catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return (null, exception.Message);
        }
    }

    /// <summary>
    /// A digest of both files' contents. Contents rather than modification times: file times are only
    /// as fine as the kernel's clock tick, so a renewal written right after a load could go unseen.
    /// The files are small and read once per new connection.
    /// </summary>
    private readonly record struct FileStamp(string Digest)
    {
        public static FileStamp Of(string certificateFile, string keyFile)
        {
            try
            {
                using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                digest.AppendData(File.ReadAllBytes(certificateFile));
                digest.AppendData(SHA256.HashData(File.ReadAllBytes(keyFile)));
                return new FileStamp(Convert.ToHexString(digest.GetHashAndReset()));
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                return new FileStamp("unreadable");
            }
        }
    }
}
