using System.Security.Cryptography.X509Certificates;
using Bastion.Client.Tls;

namespace Bastion.Hosting;

/// <summary>Tells the operator when a renewed cluster certificate is taken up, or why it is not.</summary>
/// <remarks>
/// The credentials are resolved at start, not construction: a certificate from Key Vault exists only once
/// <see cref="Security.KeyVaultClusterCertificate"/>, registered before this, has started.
/// </remarks>
internal sealed partial class ClusterTlsLogging(IServiceProvider services, ILogger<ClusterTlsLogging> logger) : IHostedService
{
    private ClusterCredentials? _credentials;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var credentials = _credentials = services.GetRequiredService<ClusterCredentials>();
        credentials.CertificateReloaded += OnReloaded;
        credentials.CertificateRefused += OnRefused;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        if (_credentials is { } credentials)
        {
            credentials.CertificateReloaded -= OnReloaded;
            credentials.CertificateRefused -= OnRefused;
        }

        return Task.CompletedTask;
    }

    private void OnReloaded(X509Certificate2 certificate) => LogReloaded(logger, certificate.Thumbprint, certificate.NotAfter.ToUniversalTime());

    private void OnRefused(string reason) => LogRefused(logger, reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster TLS certificate renewed: new connections present {Thumbprint}, valid until {NotAfter:u}")]
    private static partial void LogReloaded(ILogger logger, string thumbprint, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A renewed cluster TLS certificate cannot be used ({Reason}); the previous certificate stays in use")]
    private static partial void LogRefused(ILogger logger, string reason);
}
