using System.Security.Cryptography.X509Certificates;
using Bastion.Client.Tls;

namespace Bastion.Hosting;

/// <summary>Tells the operator when a renewed cluster certificate is taken up, or why it is not.</summary>
internal sealed partial class ClusterTlsLogging(ClusterCredentials credentials, ILogger<ClusterTlsLogging> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        credentials.CertificateReloaded += OnReloaded;
        credentials.CertificateRefused += OnRefused;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        credentials.CertificateReloaded -= OnReloaded;
        credentials.CertificateRefused -= OnRefused;
        return Task.CompletedTask;
    }

    private void OnReloaded(X509Certificate2 certificate) => LogReloaded(logger, certificate.Thumbprint, certificate.NotAfter.ToUniversalTime());

    private void OnRefused(string reason) => LogRefused(logger, reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster TLS certificate renewed: new connections present {Thumbprint}, valid until {NotAfter:u}")]
    private static partial void LogReloaded(ILogger logger, string thumbprint, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster TLS certificate files changed but cannot be used ({Reason}); the previous certificate stays in use")]
    private static partial void LogRefused(ILogger logger, string reason);
}
