namespace Bastion.Client.Tls;

/// <summary>
/// The PEM files of one cluster member: its certificate and key, and the cluster CA that every peer's
/// certificate must chain to (the CA file pins trust: the system store is never consulted).
/// </summary>
public sealed class ClusterTlsOptions
{
    /// <summary>The configuration section a client reads by default.</summary>
    public const string ClientSectionName = "Bastion:Client:Tls";

    /// <summary>This member's certificate (PEM), issued directly by a CA in <see cref="CaFile"/>.</summary>
    public string? CertificateFile { get; set; }

    /// <summary>The private key of <see cref="CertificateFile"/> (PEM, PKCS#8 or EC/RSA; unencrypted).</summary>
    public string? KeyFile { get; set; }

    /// <summary>The cluster CA certificate(s) (PEM). Two during a CA rollover; never a public CA.</summary>
    public string? CaFile { get; set; }

    /// <summary>How long a TLS handshake may take before the connection is dropped.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
