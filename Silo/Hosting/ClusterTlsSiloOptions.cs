namespace Bastion.Hosting;

/// <summary>Silo settings of cluster TLS beyond the files (<see cref="Client.Tls.ClusterTlsOptions"/>, bound from the same section).</summary>
public sealed class ClusterTlsSiloOptions
{
    /// <summary>Mutual TLS on the silo and gateway ports. Only Development may turn it off.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Development only, with no files configured: where the development cluster CA and certificates
    /// live. Every member of one development cluster must name the same directory; by default it is
    /// <c>cluster-tls</c> under the node's data directory.
    /// </summary>
    public string? DevelopmentDirectory { get; set; }

    /// <summary>
    /// The Key Vault certificate (read through its secret of the same name) that is the silo certificate, instead of
    /// <c>CertificateFile</c> and <c>KeyFile</c>. Read from the key provider's vault with its credential, and again
    /// every <c>Bastion:Keys:KeyVault:RefreshInterval</c>; the CA stays pinned by <c>CaFile</c>.
    /// </summary>
    public string? KeyVaultCertificate { get; set; }
}
