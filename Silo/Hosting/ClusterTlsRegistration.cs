using Bastion.Client.Tls;
using Bastion.Security;
using Orleans.Configuration;

namespace Bastion.Hosting;

/// <summary>
/// Orleans silo↔silo and client↔gateway traffic over mutual TLS with a pinned cluster CA: the silo
/// port accepts only silo certificates, the gateway port only client certificates.
/// </summary>
public static class ClusterTlsRegistration
{
    public const string SectionName = "Bastion:Cluster:Tls";

    /// <summary>Loads and checks the silo's certificate and CA, then secures the silo's connections.</summary>
    public static ISiloBuilder UseBastionClusterTls(this ISiloBuilder silo, IConfiguration configuration, bool isDevelopment, DevelopmentPaths paths)
    {
        var section = configuration.GetSection(SectionName);
        var settings = configuration.BindValidated<ClusterTlsSiloOptions>(SectionName);
        if (!settings.Enabled)
        {
            return isDevelopment
                ? silo
                : throw new StartupException($"{SectionName}:Enabled can be false only in Development: silos and clients talk over mutual TLS.");
        }

        var files = section.Get<ClusterTlsOptions>() ?? new ClusterTlsOptions();
        if (files is { CertificateFile: null, KeyFile: null, CaFile: null })
        {
            if (!isDevelopment)
            {
                throw new StartupException($"{SectionName}:CertificateFile is not set. Outside Development silos talk to each other and to clients over mutual TLS with a silo certificate, its KeyFile and the cluster CaFile.");
            }

            var development = DevelopmentClusterCertificates.LoadOrCreate(
                settings.DevelopmentDirectory is { } directory ? Path.GetFullPath(directory) : paths.ClusterTls, TimeProvider.System);
            files = development.Silo;
        }

        var credentials = ClusterCredentials.Load(files, ClusterCertificateKind.Silo, SectionName);
        var handshakeTimeout = files.HandshakeTimeout;
        silo.Services.AddSingleton(credentials);
        silo.Services.AddHostedService<ClusterTlsLogging>();
        return silo.Configure<SiloConnectionOptions>(connections =>
        {
            connections.ConfigureSiloInboundConnection(connection => connection.UseServerTls(
                Tls(credentials, ClusterCertificateKind.Silo, peerIsServer: false, handshakeTimeout)));
            connections.ConfigureGatewayInboundConnection(connection => connection.UseServerTls(
                Tls(credentials, ClusterCertificateKind.Client, peerIsServer: false, handshakeTimeout)));
            connections.ConfigureSiloOutboundConnection(connection => connection.UseClientTls(
                Tls(credentials, ClusterCertificateKind.Silo, peerIsServer: true, handshakeTimeout)));
        });
    }

    private static Orleans.Connections.Security.TlsOptions Tls(ClusterCredentials credentials, ClusterCertificateKind peerKind, bool peerIsServer, TimeSpan handshakeTimeout)
    {
        var tls = new Orleans.Connections.Security.TlsOptions();
        credentials.ConfigureTls(tls, peerKind, peerIsServer, handshakeTimeout);
        return tls;
    }
}
