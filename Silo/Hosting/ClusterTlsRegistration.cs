using Azure.Security.KeyVault.Secrets;
using Bastion.Client.Tls;
using Bastion.Security;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Orleans.Configuration;

namespace Bastion.Hosting;

/// <summary>
/// Orleans silo↔silo and client↔gateway traffic over mutual TLS with a pinned cluster CA: the silo
/// port accepts only silo certificates, the gateway port only client certificates.
/// </summary>
public static class ClusterTlsRegistration
{
    public const string SectionName = "Bastion:Cluster:Tls";

    /// <summary>
    /// Loads and checks the silo's certificate and CA (from files now; from Key Vault when the host starts), then
    /// secures the silo's connections. Registered before Orleans, so that a certificate from Key Vault has been read
    /// and checked before the silo opens or accepts a connection.
    /// </summary>
    public static IServiceCollection AddBastionClusterTls(this IServiceCollection services, IConfiguration configuration, bool isDevelopment, DevelopmentPaths paths)
    {
        var section = configuration.GetSection(SectionName);
        var settings = configuration.BindValidated<ClusterTlsSiloOptions>(SectionName);
        if (!settings.Enabled)
        {
            return isDevelopment
                ? services
                : throw new StartupException($"{SectionName}:Enabled can be false only in Development: silos and clients talk over mutual TLS.");
        }

        var files = section.Get<ClusterTlsOptions>() ?? new ClusterTlsOptions();
        if (settings.KeyVaultCertificate is not null)
        {
            AddKeyVaultCertificate(services, configuration, settings.KeyVaultCertificate, files, isDevelopment);
        }
        else
        {
            if (files is { CertificateFile: null, KeyFile: null, CaFile: null })
            {
                if (!isDevelopment)
                {
                    throw new StartupException($"{SectionName}:CertificateFile is not set. Outside Development silos talk to each other and to clients over mutual TLS with a silo certificate, its KeyFile and the cluster CaFile (or {SectionName}:KeyVaultCertificate).");
                }

                var development = DevelopmentClusterCertificates.LoadOrCreate(
                    settings.DevelopmentDirectory is { } directory ? Path.GetFullPath(directory) : paths.ClusterTls, TimeProvider.System);
                files = development.Silo;
            }

            services.AddSingleton(ClusterCredentials.Load(files, ClusterCertificateKind.Silo, SectionName));
        }

        var handshakeTimeout = files.HandshakeTimeout;
        services.AddHostedService<ClusterTlsLogging>();
        // The connection builders run when the first connection is opened or accepted, after the hosted services
        // above have started: only then are credentials from Key Vault there to be resolved.
        return services.Configure<SiloConnectionOptions>(connections =>
        {
            connections.ConfigureSiloInboundConnection(connection => connection.UseServerTls(
                Tls(connection.ApplicationServices, ClusterCertificateKind.Silo, peerIsServer: false, handshakeTimeout)));
            connections.ConfigureGatewayInboundConnection(connection => connection.UseServerTls(
                Tls(connection.ApplicationServices, ClusterCertificateKind.Client, peerIsServer: false, handshakeTimeout)));
            connections.ConfigureSiloOutboundConnection(connection => connection.UseClientTls(
                Tls(connection.ApplicationServices, ClusterCertificateKind.Silo, peerIsServer: true, handshakeTimeout)));
        });
    }

    /// <summary>
    /// The silo certificate from the key provider's vault: the same <see cref="SecretClient"/> (credential, retries)
    /// and refresh interval as <see cref="KeyVaultKeyProvider"/>, so it needs the Key Vault provider.
    /// </summary>
    private static void AddKeyVaultCertificate(IServiceCollection services, IConfiguration configuration, string secretName, ClusterTlsOptions files, bool isDevelopment)
    {
        const string setting = KeyVaultClusterCertificate.Setting;
        if (files.CertificateFile is not null || files.KeyFile is not null)
        {
            throw new StartupException($"{setting} and {SectionName}:CertificateFile/{SectionName}:KeyFile are both set; the silo certificate comes from one of them.");
        }

        if (!KeyVaultOptions.IsSecretName(secretName))
        {
            throw new StartupException($"{setting} must be a Key Vault certificate name (1-127 letters, digits and '-').");
        }

        var keys = configuration.BindValidated<KeyOptions>(KeyOptions.SectionName);
        if (keys.EffectiveProvider(isDevelopment) != KeyProviderKind.KeyVault)
        {
            throw new StartupException($"{setting} needs {KeyOptions.SectionName}:Provider KeyVault: the certificate is read from {KeyVaultOptions.SectionName}:VaultUri with the key provider's credential.");
        }

        // The SecretClient is the key provider's (KeyVaultRegistration), registered before this.
        services.TryAddSingleton(sp => new KeyVaultClusterCertificate(
            sp.GetRequiredService<SecretClient>(), secretName, keys.KeyVault, files, sp.GetService<TimeProvider>() ?? TimeProvider.System,
            sp.GetRequiredService<ILogger<KeyVaultClusterCertificate>>()));
        services.AddHostedService(sp => sp.GetRequiredService<KeyVaultClusterCertificate>());
        services.AddSingleton(sp => sp.GetRequiredService<KeyVaultClusterCertificate>().Credentials);
    }

    private static Orleans.Connections.Security.TlsOptions Tls(IServiceProvider services, ClusterCertificateKind peerKind, bool peerIsServer, TimeSpan handshakeTimeout)
    {
        var tls = new Orleans.Connections.Security.TlsOptions();
        services.GetRequiredService<ClusterCredentials>().ConfigureTls(tls, peerKind, peerIsServer, handshakeTimeout);
        return tls;
    }
}
