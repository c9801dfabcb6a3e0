namespace Bastion.Cluster;

/// <summary>
/// The <c>RequestContext</c> entries that prove who made a grain call. Every call into a silo carries
/// either a service token (from the client library) or a silo assertion (from another silo); the
/// silo's incoming call filter refuses any call that carries neither, valid.
/// </summary>
public static class ServiceCallContext
{
    /// <summary>The entry holding a service token: a compact ES256 JWS signed by the calling service.</summary>
    public const string ServiceTokenKey = "bastion.service-token";

    /// <summary>The entry holding a silo assertion, MAC'd with a key only silos hold.</summary>
    public const string SiloAssertionKey = "bastion.silo-assertion";

    /// <summary>The audience every service token must name.</summary>
    public const string Audience = "bastion-cluster";

    /// <summary>The JOSE <c>typ</c> of a service token.</summary>
    public const string TokenType = "svc+jwt";

    /// <summary>The claim naming the user a service acts for (a plain user id).</summary>
    public const string ActorClaim = "act";

    /// <summary>The longest lifetime (<c>exp</c> − <c>iat</c>) a silo accepts for a service token.</summary>
    public static readonly TimeSpan MaxTokenLifetime = TimeSpan.FromMinutes(5);
}
