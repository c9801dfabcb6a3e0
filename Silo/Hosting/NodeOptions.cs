using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Sockets;

namespace Bastion.Hosting;

/// <summary>What this silo is and where it keeps its local files.</summary>
public sealed class NodeOptions : IValidatableObject
{
    public const string SectionName = "Bastion:Node";
    public const string ApiRole = "api";
    public const string WorkerRole = "worker";

    /// <summary>
    /// <c>api</c>, <c>worker</c> or both; empty means both (the single-node default). Empty rather than
    /// pre-filled, because configuration binding appends to an array instead of replacing it.
    /// </summary>
    public string[] Roles { get; set; } = [];

    /// <summary>Local state for development: embedded PostgreSQL, keyring, certificates, admin key.</summary>
    [Required]
    public string DataDirectory { get; set; } = ".bastion";

    /// <summary>The Orleans cluster id. Required outside Development; a development node uses a fresh one per start.</summary>
    public string? ClusterId { get; set; }

    /// <summary>The Orleans service id: grain state is keyed by it, so it must never change.</summary>
    [Required]
    public string ServiceId { get; set; } = "bastion";

    /// <summary>
    /// The address other silos reach this one at: an IP address, or a host name resolved once at start-up (a
    /// container's service name, which has no fixed address).
    /// </summary>
    [Required]
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>Silo-to-silo port; 0 picks a free one.</summary>
    [Range(0, 65535)]
    public int SiloPort { get; set; }

    /// <summary>Client gateway port; 0 picks a free one.</summary>
    [Range(0, 65535)]
    public int GatewayPort { get; set; }

    /// <summary>
    /// How long a worker asked to stop (SIGTERM) lets its running generations finish before it ends the rest
    /// with a retryable error. New generations go to other workers from the moment it is asked.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public bool HasRole(string role) => Roles.Length == 0 || Roles.Contains(role, StringComparer.Ordinal);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Roles.Any(role => role is not (ApiRole or WorkerRole)))
        {
            yield return new ValidationResult($"{SectionName}:Roles must list '{ApiRole}', '{WorkerRole}' or both.", [nameof(Roles)]);
        }

        if (DrainTimeout < TimeSpan.Zero || DrainTimeout > TimeSpan.FromHours(1))
        {
            yield return new ValidationResult($"{SectionName}:DrainTimeout must lie between 00:00:00 and 01:00:00.", [nameof(DrainTimeout)]);
        }

        if (!IPAddress.TryParse(AdvertisedAddress, out _) && Uri.CheckHostName(AdvertisedAddress) != UriHostNameType.Dns)
        {
            yield return new ValidationResult($"{SectionName}:AdvertisedAddress must be an IP address or a host name.", [nameof(AdvertisedAddress)]);
        }
    }

    /// <summary>
    /// The IP address to advertise: <see cref="AdvertisedAddress"/> itself, or the address its host name resolves to
    /// (IPv4 first, since silos compare addresses, and a host with both would otherwise advertise either).
    /// </summary>
    public IPAddress ResolveAdvertisedAddress()
    {
        if (IPAddress.TryParse(AdvertisedAddress, out var address))
        {
            return address;
        }

        IPAddress[] addresses;
        try
        {
            addresses = Dns.GetHostAddresses(AdvertisedAddress);
        }
        catch (SocketException exception)
        {
            throw new StartupException($"{SectionName}:AdvertisedAddress: the host name '{AdvertisedAddress}' does not resolve ({exception.SocketErrorCode}).", exception);
        }

        return addresses.OrderBy(candidate => candidate.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).FirstOrDefault()
            ?? throw new StartupException($"{SectionName}:AdvertisedAddress: the host name '{AdvertisedAddress}' resolves to no address.");
    }
}
