using System.ComponentModel.DataAnnotations;

namespace Bastion.Hosting;

/// <summary>The HTTPS edge.</summary>
public sealed class HttpOptions
{
    public const string SectionName = "Bastion:Http";

    /// <summary>The address to listen on; loopback unless configured.</summary>
    [Required]
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>The HTTPS port; 0 picks a free one (the chosen URL is printed as <c>BASTION_URL</c>).</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <summary>The largest accepted request body.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxRequestBodyBytes { get; set; } = 256 * 1024;

    /// <summary>Token exchanges (<c>POST /v1/auth/token</c>) allowed per client address per minute, on each API silo.</summary>
    [Range(1, 1_000_000)]
    public int TokenExchangesPerMinutePerAddress { get; set; } = 30;

    /// <summary>
    /// Failed authentications (401s) allowed per client address (IPv6: per /64) per minute, counted across the cluster;
    /// then every request from that address is refused (429) until the minute ends.
    /// </summary>
    [Range(1, 1_000_000)]
    public int AuthenticationFailuresPerMinutePerAddress { get; set; } = 60;

    /// <summary>Failed authentications allowed per issued API key id per minute, counted across the cluster; then that key is refused (429) until the minute ends.</summary>
    [Range(1, 1_000_000)]
    public int AuthenticationFailuresPerMinutePerKey { get; set; } = 10;

    /// <summary>PEM certificate (chain) for HTTPS. Required outside Development.</summary>
    public string? CertificateFile { get; set; }

    /// <summary>PEM private key for <see cref="CertificateFile"/>.</summary>
    public string? CertificateKeyFile { get; set; }
}
