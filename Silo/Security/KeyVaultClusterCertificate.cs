using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Azure.Security.KeyVault.Secrets;
using Bastion.Client.Tls;
using Bastion.Hosting;

namespace Bastion.Security;

/// <summary>
/// The silo's cluster certificate from Azure Key Vault. A Key Vault certificate whose key is exportable is
/// readable through its secret of the same name: PEM (<c>application/x-pem-file</c>: the private key and the
/// certificate chain, leaf first) or base64 PKCS#12 (<c>application/x-pkcs12</c>). The latest enabled version is
/// read before Orleans starts (the silo does not start without a certificate that fits) and again every
/// <c>RefreshInterval</c> of the key provider, with the key provider's <see cref="SecretClient"/>; a new version
/// is offered to <see cref="ReloadingCertificate"/>, which presents it on new connections once it fits, or keeps
/// the previous one and reports why.
/// </summary>
public sealed partial class KeyVaultClusterCertificate : IClusterCertificateSource, IHostedService, IDisposable
{
    /// <summary>The setting that names the certificate.</summary>
    public const string Setting = ClusterTlsRegistration.SectionName + ":" + nameof(ClusterTlsSiloOptions.KeyVaultCertificate);

    private const string PemContentType = "application/x-pem-file";
    private const string Pkcs12ContentType = "application/x-pkcs12";

    private readonly SecretClient _client;
    private readonly string _secretName;
    private readonly KeyVaultOptions _vault;
    private readonly ClusterTlsOptions _tls;
    private readonly ILogger<KeyVaultClusterCertificate> _logger;
    private readonly PeriodicRefresh _refresh;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private volatile Offer? _offer;
    private ClusterCredentials? _credentials;

    public KeyVaultClusterCertificate(
        SecretClient client, string secretName, KeyVaultOptions vault, ClusterTlsOptions tls, TimeProvider time, ILogger<KeyVaultClusterCertificate> logger)
    {
        _client = client;
        _secretName = secretName;
        _vault = vault;
        _tls = tls;
        _logger = logger;
        // The certificate in use stays when a refresh fails.
        _refresh = new PeriodicRefresh(vault.RefreshInterval, time, RefreshAsync, exception => LogRefreshFailed(secretName, KeyVaultKeyProvider.Describe(exception)));
    }

    /// <summary>The silo's credentials, once the certificate has been read at start.</summary>
    public ClusterCredentials Credentials =>
        _credentials ?? throw new InvalidOperationException($"The cluster certificate has not been read from Key Vault yet ({Setting}).");

    /// <summary>The vault version on offer.</summary>
    string IClusterCertificateSource.Stamp => _offer?.Version ?? string.Empty;

    X509Certificate2 IClusterCertificateSource.Load() => _offer switch
    {
        { Certificate: { } certificate } => certificate,
        { Problem: { } problem } => throw new CryptographicException(problem),
        _ => throw new CryptographicException($"secret '{_secretName}' has not been read yet"),
    };

    /// <summary>Reads the certificate and checks it against the pinned CA, then refreshes in the background.</summary>
    /// <exception cref="StartupException">The vault cannot be read.</exception>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The certificate does not fit; the message names the setting.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RefreshAsync(cancellationToken);
        }
        catch (Exception exception) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StartupException(
                $"{Setting}: secret '{_secretName}' could not be read from Key Vault {_vault.VaultUri} ({KeyVaultOptions.SectionName}:VaultUri): " +
                $"{KeyVaultKeyProvider.Describe(exception)}. The silo's identity needs the Key Vault Secrets User role on the vault, and the " +
                "certificate an exportable key; see docs/cluster-tls.md.", exception);
        }

        _credentials = ClusterCredentials.Load(_tls, ClusterCertificateKind.Silo, ClusterTlsRegistration.SectionName, this, nameof(ClusterTlsSiloOptions.KeyVaultCertificate));
        _refresh.Start();
    }

    public Task StopAsync(CancellationToken cancellationToken) => _refresh.StopAsync(cancellationToken);

    /// <summary>
    /// Reads the secret's latest enabled version (its value only when it is new) and offers it; once the
    /// credentials exist the offer is taken up or refused now, so the renewal, or why it was refused, is logged
    /// at once rather than at the next new connection. Throws when the vault cannot be read; the offer stays.
    /// </summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _refreshing.WaitAsync(cancellationToken);
        try
        {
            SecretProperties? latest = null;
            await foreach (var properties in _client.GetPropertiesOfSecretVersionsAsync(_secretName, cancellationToken))
            {
                if (properties.Enabled == true && (latest is null || properties.CreatedOn > latest.CreatedOn))
                {
                    latest = properties;
                }
            }

            if (latest is null)
            {
                _offer = new Offer("none", null, $"secret '{_secretName}' has no enabled version");
            }
            else if (latest.Version != _offer?.Version)
            {
                KeyVaultSecret secret = await _client.GetSecretAsync(_secretName, latest.Version, cancellationToken);
                _offer = Parse(latest.Version, secret);
            }
        }
        finally
        {
            _refreshing.Release();
        }

        _ = _credentials?.Certificate;
    }

    private Offer Parse(string version, KeyVaultSecret secret)
    {
        var contentType = secret.Properties.ContentType;
        try
        {
            var certificate = contentType switch
            {
                Pkcs12ContentType => X509CertificateLoader.LoadPkcs12(Convert.FromBase64String(secret.Value), password: null),
                PemContentType or null or "" => X509Certificate2.CreateFromPem(secret.Value, secret.Value),
                _ => null,
            };
            return certificate is not null
                ? new Offer(version, certificate, null)
                : new Offer(version, null, $"version {version} of secret '{_secretName}' has content type '{contentType}'; expected {PemContentType} or {Pkcs12ContentType}");
        }
        catch (Exception exception) when (exception is CryptographicException or FormatException or ArgumentException)
        {
            // The exception's message is not passed on: it is about the value, which is secret.
            return new Offer(version, null, $"version {version} of secret '{_secretName}' ({contentType}) is not a certificate with its private key");
        }
    }

    public void Dispose()
    {
        _refresh.Dispose();
        _refreshing.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the cluster certificate '{SecretName}' from Key Vault failed ({Reason}); the certificate in use stays")]
    private partial void LogRefreshFailed(string secretName, string reason);

    /// <summary>A vault version and what it holds: a certificate with its key, or why it is none.</summary>
    private sealed record Offer(string Version, X509Certificate2? Certificate, string? Problem);
}
