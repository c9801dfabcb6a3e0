using System.ComponentModel.DataAnnotations;

namespace Bastion.Cluster;

/// <summary>
/// The backend services that may call the cluster through the client library
/// (<c>Bastion:Cluster:Services:N:{Name,PublicKeyFile}</c>). Each service signs its own short-lived tokens
/// with its P-256 private key; silos hold only the public key. The name must also be a provisioned Bastion
/// user, whose roles decide what the service may do.
/// </summary>
public sealed class ServiceAccessOptions
{
    public const string SectionName = "Bastion:Cluster";

    public List<ServiceKeyOptions> Services { get; set; } = [];
}

/// <summary>One service allowed to call the cluster.</summary>
public sealed class ServiceKeyOptions
{
    /// <summary>The service's name: its tokens' <c>kid</c>, <c>iss</c> and <c>sub</c>, and the id of the Bastion user it is.</summary>
    [Required, RegularExpression("^[A-Za-z0-9._@:-]{1,128}$")]
    public string Name { get; set; } = "";

    /// <summary>A PEM file holding the service's P-256 public key (<c>-----BEGIN PUBLIC KEY-----</c>).</summary>
    [Required]
    public string PublicKeyFile { get; set; } = "";
}
