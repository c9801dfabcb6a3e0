using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Client.Tls;

/// <summary>
/// A certificate and key from an <see cref="IClusterCertificateSource"/> (PEM files, a Key Vault secret), loaded
/// again whenever the source's stamp changes, so that renewing a certificate is replacing two files or adding a
/// vault version: the next connection presents the new one, open connections keep theirs. A replacement that
/// cannot be loaded yet (one file written, the other not) or that <c>accept</c> refuses leaves the previous
/// certificate in use until the source offers one that fits.
/// </summary>
public sealed class ReloadingCertificate
{
    private readonly Lock _gate = new();
    private readonly IClusterCertificateSource _source;
    private readonly Func<X509Certificate2, bool> _accept;
    private string _stamp;
    private string? _refusedStamp;
    private X509Certificate2 _current;

    private ReloadingCertificate(IClusterCertificateSource source, Func<X509Certificate2, bool> accept, X509Certificate2 current, string stamp)
    {
        _source = source;
        _accept = accept;
        _current = current;
        _stamp = stamp;
    }

    /// <summary>Raised with the new certificate when a changed certificate has been taken up.</summary>
    public event Action<X509Certificate2>? Reloaded;

    /// <summary>Raised (once per change of the source) with the reason a changed certificate was not taken up.</summary>
    public event Action<string>? Refused;

    /// <summary>The certificate to present on a new connection.</summary>
    public X509Certificate2 Current
    {
        get
        {
            var stamp = _source.Stamp;
            X509Certificate2? reloaded = null;
            string? refused = null;
            X509Certificate2 current;
            lock (_gate)
            {
                if (stamp != _stamp && stamp != _refusedStamp)
                {
                    var (loaded, problem) = TryLoad(_source);
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

    /// <summary>Loads what <paramref name="source"/> offers now; throws <see cref="CryptographicException"/> or <see cref="IOException"/> when it cannot.</summary>
    public static ReloadingCertificate Load(IClusterCertificateSource source, Func<X509Certificate2, bool> accept)
    {
        ArgumentNullException.ThrowIfNull(source);
        var stamp = source.Stamp;
        return new ReloadingCertificate(source, accept, source.Load(), stamp);
    }

    private static (X509Certificate2? Certificate, string? Problem) TryLoad(IClusterCertificateSource source)
    {
        try
        {
            return (source.Load(), null);
        }
        catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return (null, exception.Message);
        }
    }
}
