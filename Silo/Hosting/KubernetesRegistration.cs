using System.Net;
using System.Text.RegularExpressions;
using Orleans.Configuration;
using Orleans.Hosting.Kubernetes;

namespace Bastion.Hosting;

/// <summary>
/// Orleans' Kubernetes hosting (Microsoft.Orleans.Hosting.Kubernetes) behind <c>Bastion:Kubernetes:Enabled</c>, kept
/// consistent with Bastion's own node settings. Orleans' package reads the pod's identity from environment variables and
/// quietly falls back when one is missing (the host name for the pod name, the service account's namespace file, a DNS
/// lookup for the address), and lets <c>ORLEANS_CLUSTER_ID</c> and <c>ORLEANS_SERVICE_ID</c> override the cluster's
/// identity. Here a missing variable stops start-up naming it, and Bastion's <c>Bastion:Node</c> settings stay the only
/// source of the cluster id, the service id and the ports.
/// </summary>
public static partial class KubernetesRegistration
{
    /// <summary>
    /// With <c>Bastion:Kubernetes:Enabled</c>: checks the pod's variables and the node's settings, adds Orleans'
    /// Kubernetes hosting (silo name = pod name, the pod watcher), and advertises <c>POD_IP</c>. Call it before Bastion
    /// configures <see cref="ClusterOptions"/>, so that Bastion's values are the ones applied last.
    /// </summary>
    /// <exception cref="StartupException">A pod variable is missing or invalid, or a node setting cannot work in Kubernetes.</exception>
    public static ISiloBuilder AddBastionKubernetesHosting(this ISiloBuilder silo, IConfiguration configuration, NodeOptions node)
    {
        var options = configuration.BindValidated<KubernetesOptions>(KubernetesOptions.SectionName);
        if (!options.Enabled)
        {
            return silo;
        }

        // Read through configuration, which holds the process's environment variables; Orleans reads the same variables
        // from the environment itself.
        Required(configuration, KubernetesHostingOptions.PodNameEnvironmentVariable, "metadata.name");
        Required(configuration, KubernetesHostingOptions.PodNamespaceEnvironmentVariable, "metadata.namespace");
        var podIpText = Required(configuration, KubernetesHostingOptions.PodIPEnvironmentVariable, "status.podIP");
        if (!IPAddress.TryParse(podIpText, out var podIp))
        {
            throw new StartupException($"{KubernetesHostingOptions.PodIPEnvironmentVariable} ('{podIpText}') is not an IP address; set it from the downward API's status.podIP.");
        }

        CheckNode(configuration, node, podIp);

        // Names the silo after the pod (POD_NAME): the pod watcher matches membership entries to pods by that name.
        silo.UseKubernetesHosting(kubernetes => kubernetes.Bind(configuration.GetSection(KubernetesOptions.SectionName)));
        // Bastion configures the advertised address from Bastion:Node (127.0.0.1 by default), which would keep Orleans'
        // own pod-IP default from applying. A post-configuration runs after every configuration, whatever the order.
        silo.Services.PostConfigure<EndpointOptions>(endpoints => endpoints.AdvertisedIPAddress = podIp);
        return silo;
    }

    private static void CheckNode(IConfiguration configuration, NodeOptions node, IPAddress podIp)
    {
        const string enabled = $"{KubernetesOptions.SectionName}:Enabled";
        if (string.IsNullOrWhiteSpace(node.ClusterId))
        {
            throw new StartupException($"{NodeOptions.SectionName}:ClusterId is not set; with {enabled} every pod of a cluster needs the same cluster id.");
        }

        // The pod watcher labels each pod with both ids and selects the cluster's pods by them.
        foreach (var (setting, value) in new[] { ("ClusterId", node.ClusterId), ("ServiceId", node.ServiceId) })
        {
            if (!LabelValue().IsMatch(value))
            {
                throw new StartupException(
                    $"{NodeOptions.SectionName}:{setting} ('{value}') must be a Kubernetes label value with {enabled}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit.");
            }
        }

        foreach (var (variable, setting, value) in new[]
        {
            (KubernetesHostingOptions.ClusterIdEnvironmentVariable, "ClusterId", node.ClusterId),
            (KubernetesHostingOptions.ServiceIdEnvironmentVariable, "ServiceId", node.ServiceId),
        })
        {
            if (configuration[variable] is { Length: > 0 } other && !string.Equals(other, value, StringComparison.Ordinal))
            {
                throw new StartupException(
                    $"{variable} ('{other}') differs from {NodeOptions.SectionName}:{setting} ('{value}'). Bastion takes the cluster's identity from {NodeOptions.SectionName} only; unset {variable}.");
            }
        }

        if (configuration[$"{NodeOptions.SectionName}:AdvertisedAddress"] is { Length: > 0 } advertised
            && !(IPAddress.TryParse(advertised, out var address) && address.Equals(podIp)))
        {
            throw new StartupException(
                $"{NodeOptions.SectionName}:AdvertisedAddress ('{advertised}') differs from {KubernetesHostingOptions.PodIPEnvironmentVariable} ('{podIp}'); with {enabled} the silo advertises its pod's IP. Unset it.");
        }

        if (node.SiloPort == 0 || node.GatewayPort == 0)
        {
            throw new StartupException(
                $"{NodeOptions.SectionName}:SiloPort and {NodeOptions.SectionName}:GatewayPort must be set (not 0) with {enabled}: network policies name the ports.");
        }
    }

    private static string Required(IConfiguration configuration, string variable, string downwardApiField) =>
        configuration[variable] is { Length: > 0 } value && !string.IsNullOrWhiteSpace(value)
            ? value
            : throw new StartupException(
                $"{variable} is not set; with {KubernetesOptions.SectionName}:Enabled the pod must set it from the downward API (fieldRef {downwardApiField}).");

    [GeneratedRegex("^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]
    private static partial Regex LabelValue();
}
