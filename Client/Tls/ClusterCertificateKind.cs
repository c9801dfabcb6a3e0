namespace Bastion.Client.Tls;

/// <summary>
/// What a cluster certificate may be used for. The kind is a URI in the certificate's subject
/// alternative names, chosen by whoever issues it: <c>urn:bastion:silo</c> for a silo,
/// <c>urn:bastion:client:&lt;service&gt;</c> for a backend service's client.
/// </summary>
public enum ClusterCertificateKind
{
    /// <summary>A silo certificate: accepted on the silo port, and presented by a gateway to clients.</summary>
    Silo,

    /// <summary>A client certificate: accepted on the gateway port only.</summary>
    Client,
}
