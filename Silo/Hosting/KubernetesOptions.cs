namespace Bastion.Hosting;

/// <summary>
/// Running as Kubernetes pods (deploy/kubernetes/): Orleans' Kubernetes hosting names each silo after its pod, advertises
/// the pod's IP, and watches the cluster's pods so that a deleted pod's silo is declared dead at once. Off unless set.
/// The same section also binds Orleans' own <c>KubernetesHostingOptions</c> as they are (<c>MaxAgents</c>,
/// <c>DeleteDefunctSiloPods</c>, <c>MaxKubernetesApiRetryAttempts</c>).
/// </summary>
public sealed class KubernetesOptions
{
    public const string SectionName = "Bastion:Kubernetes";

    /// <summary>
    /// Use Orleans' Kubernetes hosting. Needs <c>POD_NAME</c>, <c>POD_NAMESPACE</c> and <c>POD_IP</c> from the downward
    /// API, a fixed silo and gateway port, and a service account allowed to get, list, watch and patch the namespace's pods.
    /// </summary>
    public bool Enabled { get; set; }
}
