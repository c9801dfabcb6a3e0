using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using Orleans.Connections.Security;

namespace Bastion.Client.Tls;

/// <summary>
/// One cluster member's TLS credentials: its own certificate (reloaded when its source changes) and
/// the pinned cluster CA that every peer certificate must chain to.
/// </summary>
public sealed class ClusterCredentials
{
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private readonly X509Certificate2Collection _authorities;
    private readonly ReloadingCertificate _certificate;

    private ClusterCredentials(X509Certificate2Collection authorities, Func<ClusterCredentials, ReloadingCertificate> certificate)
    {
        _authorities = authorities;
        _certificate = certificate(this);
    }

    /// <summary>The certificate to present on a new connection.</summary>
    public X509Certificate2 Certificate => _certificate.Current;

    /// <summary>Raised with the new certificate when a renewed certificate has been taken up.</summary>
    public event Action<X509Certificate2>? CertificateReloaded
    {
        add => _certificate.Reloaded += value;
        remove => _certificate.Reloaded -= value;
    }

    /// <summary>Raised, once per change of the source, with the reason a renewed certificate was not taken up (the previous certificate stays in use).</summary>
    public event Action<string>? CertificateRefused
    {
        add => _certificate.Refused += value;
        remove => _certificate.Refused -= value;
    }

    /// <summary>
    /// Loads and checks the files of <paramref name="options"/>: the certificate must be of
    /// <paramref name="kind"/>, valid now, and issued by the CA. Failures name the setting under
    /// <paramref name="sectionName"/>.
    /// </summary>
    /// <exception cref="OptionsValidationException">A file is missing, unreadable or does not fit.</exception>
    public static ClusterCredentials Load(ClusterTlsOptions options, ClusterCertificateKind kind, string sectionName)
    {
        ArgumentNullException.ThrowIfNull(options);
        var certificateFile = Required(options.CertificateFile, sectionName, nameof(ClusterTlsOptions.CertificateFile));
        var keyFile = Required(options.KeyFile, sectionName, nameof(ClusterTlsOptions.KeyFile));
        return Load(options, kind, sectionName, new PemFileCertificateSource(certificateFile, keyFile), nameof(ClusterTlsOptions.CertificateFile),
            $"or {sectionName}:{nameof(ClusterTlsOptions.KeyFile)} cannot be loaded as a PEM certificate and its private key");
    }

    /// <summary>
    /// Loads the certificate that <paramref name="source"/> offers and the CA file of <paramref name="options"/>
    /// (its certificate and key files are not read), and checks them as for files. Failures name
    /// <paramref name="certificateSetting"/> (or <c>CaFile</c>) under <paramref name="sectionName"/>.
    /// </summary>
    /// <param name="options">The CA file and handshake timeout.</param>
    /// <param name="kind">The kind the certificate must be.</param>
    /// <param name="sectionName">The configuration section, named in errors.</param>
    /// <param name="source">Where the certificate and key come from, now and at every renewal.</param>
    /// <param name="certificateSetting">The setting that names the source, e.g. <c>KeyVaultCertificate</c>.</param>
    /// <exception cref="OptionsValidationException">The CA file is missing or unreadable, or the certificate cannot be loaded or does not fit.</exception>
    public static ClusterCredentials Load(ClusterTlsOptions options, ClusterCertificateKind kind, string sectionName, IClusterCertificateSource source, string certificateSetting) =>
        Load(options, kind, sectionName, source, certificateSetting, "cannot be loaded as a certificate with its private key");

    private static ClusterCredentials Load(
        ClusterTlsOptions options, ClusterCertificateKind kind, string sectionName, IClusterCertificateSource source, string certificateSetting, string loadProblem)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        var caFile = Required(options.CaFile, sectionName, nameof(ClusterTlsOptions.CaFile));

        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(caFile);
        }
        catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw Invalid(sectionName, nameof(ClusterTlsOptions.CaFile), $"cannot be read as PEM certificates: {exception.Message}");
        }

        if (authorities.Count == 0 || authorities.Any(authority => authority.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true }))
        {
            throw Invalid(sectionName, nameof(ClusterTlsOptions.CaFile), "must hold only CA certificates (basic constraints CA:TRUE).");
        }

        try
        {
            return new ClusterCredentials(authorities, credentials =>
            {
                var certificate = ReloadingCertificate.Load(source, candidate => credentials.Fits(candidate, kind));
                if (!credentials.Fits(certificate.Current, kind))
                {
                    throw Invalid(sectionName, certificateSetting,
                        $"must be a {kind.ToString().ToLowerInvariant()} certificate ({(kind == ClusterCertificateKind.Silo ? ClusterCertificates.SiloUri : ClusterCertificates.ClientUriPrefix + "<service>")} in its subject alternative names), valid now and issued by the CA in {sectionName}:{nameof(ClusterTlsOptions.CaFile)}.");
                }

                return certificate;
            });
        }
        catch (Exception exception) when (exception is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw Invalid(sectionName, certificateSetting, $"{loadProblem}: {exception.Message}");
        }
    }

    /// <summary>
    /// A validator for Orleans' <see cref="TlsOptions.RemoteCertificateValidation"/> that accepts a
    /// peer only if its certificate is of <paramref name="peerKind"/> and chains to exactly the
    /// pinned CA. <paramref name="peerIsServer"/> says which extended key usage the peer needs.
    /// </summary>
    public RemoteCertificateValidator PeerValidator(ClusterCertificateKind peerKind, bool peerIsServer) =>
        (certificate, presented, _) => ClusterCertificates.KindOf(certificate) == peerKind
            && ChainsToAuthority(certificate, presented, peerIsServer ? ServerAuthentication : ClientAuthentication);

    /// <summary>Configures Orleans TLS options to present this member's certificate and pin the CA.</summary>
    public void ConfigureTls(TlsOptions tls, ClusterCertificateKind peerKind, bool peerIsServer, TimeSpan handshakeTimeout)
    {
        ArgumentNullException.ThrowIfNull(tls);
        tls.LocalCertificate = Certificate;
        tls.LocalServerCertificateSelector = (_, _) => Certificate;
        tls.LocalClientCertificateSelector = (_, _, _, _, _) => Certificate;
        tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        tls.RemoteCertificateValidation = PeerValidator(peerKind, peerIsServer);
        tls.HandshakeTimeout = handshakeTimeout;
    }

    private bool Fits(X509Certificate2 certificate, ClusterCertificateKind kind) =>
        ClusterCertificates.KindOf(certificate) == kind
        && ChainsToAuthority(certificate, presented: null, ClientAuthentication)
        && (kind == ClusterCertificateKind.Client || ChainsToAuthority(certificate, presented: null, ServerAuthentication));

    private bool ChainsToAuthority(X509Certificate2 certificate, X509Chain? presented, Oid purpose)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(purpose);
        if (presented is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
        }

        if (!chain.Build(certificate))
        {
            return false;
        }

        var root = chain.ChainElements[^1].Certificate;
        return _authorities.Any(authority => authority.RawData.AsSpan().SequenceEqual(root.RawData));
    }

    private static string Required(string? value, string sectionName, string setting) =>
        string.IsNullOrWhiteSpace(value) ? throw Invalid(sectionName, setting, "is not set.") : value;

    private static OptionsValidationException Invalid(string sectionName, string setting, string problem) =>
        new(sectionName, typeof(ClusterTlsOptions), [$"{sectionName}:{setting} {problem}"]);
}
