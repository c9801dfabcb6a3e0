using System.ComponentModel.DataAnnotations;
using Bastion.Client.Tls;

namespace Bastion.Client;

/// <summary>
/// How a backend service reaches a Bastion cluster: where the gateways are, who the service is, and how long to
/// wait. Bound from configuration section <see cref="SectionName"/> or set in code with <c>AddBastionClient</c>.
/// </summary>
public sealed class BastionClientOptions
{
    /// <summary>The configuration section these options are usually bound from.</summary>
    public const string SectionName = "Bastion:Client";

    /// <summary>
    /// Gateway endpoints as <c>host:port</c> (static clustering). Leave empty to find gateways in the cluster's
    /// membership table instead (<see cref="ClusteringConnectionString"/>).
    /// </summary>
    public List<string> Gateways { get; set; } = [];

    /// <summary>
    /// A PostgreSQL connection string to the cluster's membership table (ADO.NET clustering, invariant <c>Npgsql</c>);
    /// used when <see cref="Gateways"/> is empty. A role that can only read the membership table is enough.
    /// </summary>
    public string? ClusteringConnectionString { get; set; }

    /// <summary>The cluster id the silos run with (<c>Bastion:Node:ClusterId</c>).</summary>
    [Required]
    public string ClusterId { get; set; } = "";

    /// <summary>The service id the silos run with (<c>Bastion:Node:ServiceId</c>).</summary>
    [Required]
    public string ServiceId { get; set; } = "bastion";

    /// <summary>
    /// This service's name: a Bastion user provisioned by an admin (its roles decide what it may do) and configured on
    /// every silo with its public key (<c>Bastion:Cluster:Services:N:{Name,PublicKeyFile}</c>).
    /// </summary>
    [Required]
    public string ServiceName { get; set; } = "";

    /// <summary>A PEM file holding this service's P-256 private key (PKCS#8 or SEC1), which signs its service tokens. Keep it mode 0600.</summary>
    [Required]
    public string PrivateKeyFile { get; set; } = "";

    /// <summary>How long each service token lives (at most 5 minutes; silos refuse longer ones). A token is reused until a minute before it expires.</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long to keep trying to reach a gateway when the client starts.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long one grain call may take before it fails with a <see cref="TimeoutException"/> (Orleans' response timeout).</summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The deadline of one client operation, retries included; a longer operation fails with a timeout.</summary>
    public TimeSpan Deadline { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How many times a call that failed for a transient reason (silo gone, timeout, lost connection) is retried.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 3;

    /// <summary>The delay before the first retry; later ones back off exponentially, with jitter.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Mutual TLS to the gateways: the client certificate (<c>urn:bastion:client:&lt;service&gt;</c>), its key and the
    /// cluster CA (docs/cluster-tls.md). Silos accept gateway connections only over mutual TLS unless their cluster TLS
    /// is switched off in Development, so leave this null only for such a cluster.
    /// </summary>
    public ClusterTlsOptions? Tls { get; set; }

    /// <summary>Any further configuration of the Orleans connection to the gateways.</summary>
    public Action<IClientBuilder>? Transport { get; set; }

    /// <summary>The problems with these options, each naming the setting, or none.</summary>
    public IEnumerable<string> Problems()
    {
        if (Gateways.Count == 0 && string.IsNullOrWhiteSpace(ClusteringConnectionString))
        {
            yield return $"{SectionName}: set Gateways (host:port) or ClusteringConnectionString.";
        }

        foreach (var gateway in Gateways.Where(g => !TryParseGateway(g, out _, out _)))
        {
            yield return $"{SectionName}:Gateways: '{gateway}' is not host:port.";
        }

        if (string.IsNullOrWhiteSpace(ClusterId))
        {
            yield return $"{SectionName}:ClusterId is required.";
        }

        if (string.IsNullOrWhiteSpace(ServiceId))
        {
            yield return $"{SectionName}:ServiceId is required.";
        }

        if (string.IsNullOrWhiteSpace(ServiceName))
        {
            yield return $"{SectionName}:ServiceName is required.";
        }

        if (string.IsNullOrWhiteSpace(PrivateKeyFile))
        {
            yield return $"{SectionName}:PrivateKeyFile is required.";
        }

        if (TokenLifetime <= TimeSpan.FromSeconds(90) || TokenLifetime > TimeSpan.FromMinutes(5))
        {
            yield return $"{SectionName}:TokenLifetime must be more than 90 seconds and at most 5 minutes.";
        }

        if (ConnectTimeout <= TimeSpan.Zero || ResponseTimeout <= TimeSpan.Zero || Deadline <= TimeSpan.Zero || RetryDelay < TimeSpan.Zero)
        {
            yield return $"{SectionName}: ConnectTimeout, ResponseTimeout and Deadline must be positive, RetryDelay not negative.";
        }

        if (MaxRetries is < 0 or > 10)
        {
            yield return $"{SectionName}:MaxRetries must be between 0 and 10.";
        }
    }

    internal static bool TryParseGateway(string gateway, out string host, out int port)
    {
        var colon = gateway.LastIndexOf(':');
        host = colon > 0 ? gateway[..colon].Trim('[', ']') : "";
        port = 0;
        return colon > 0 && int.TryParse(gateway.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port)
            && port is > 0 and < 65536;
    }
}
