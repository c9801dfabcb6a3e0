namespace Bastion.Client.Tls;

/// <summary>Mutual TLS between an Orleans client and the cluster's gateways.</summary>
public static class ClusterTlsClientBuilderExtensions
{
    /// <summary>
    /// Connects to gateways over mutual TLS: presents the client certificate of
    /// <paramref name="options"/> (<c>urn:bastion:client:&lt;service&gt;</c>, reloaded when its files
    /// change) and accepts a gateway only if it presents a silo certificate issued by the pinned CA.
    /// </summary>
    /// <param name="builder">The Orleans client builder.</param>
    /// <param name="options">The client's certificate, key and cluster CA files.</param>
    /// <param name="sectionName">The configuration section the options came from, named in errors.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">A file is missing, unreadable or not a client certificate from the CA.</exception>
    public static IClientBuilder UseBastionClusterTls(this IClientBuilder builder, ClusterTlsOptions options, string sectionName = ClusterTlsOptions.ClientSectionName)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        var credentials = ClusterCredentials.Load(options, ClusterCertificateKind.Client, sectionName);
        return builder.UseTls(tls => credentials.ConfigureTls(tls, ClusterCertificateKind.Silo, peerIsServer: true, options.HandshakeTimeout));
    }
}
