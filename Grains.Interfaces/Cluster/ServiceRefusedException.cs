namespace Bastion.Cluster;

/// <summary>Why the cluster refused a call from a service.</summary>
public enum ServiceRefusal
{
    /// <summary>The service token is missing, forged, expired or otherwise invalid, or the service is not a provisioned user.</summary>
    NotAuthenticated = 1,

    /// <summary>The service (or the user it acts for) lacks the permission, or the target is not a facade interface.</summary>
    Forbidden = 2,

    /// <summary>The service, or the user it acts for, is suspended.</summary>
    Suspended = 3,

    /// <summary>A rate limit, quota or concurrency limit of the user is exhausted.</summary>
    LimitExceeded = 4,

    /// <summary>The user, key or generation does not exist.</summary>
    NotFound = 5,

    /// <summary>The change conflicts with the current state (the user exists, the last admin, an idempotency key reused for another call).</summary>
    Conflict = 6,

    /// <summary>An argument is invalid.</summary>
    InvalidRequest = 7,
}

/// <summary>
/// A call from a service was refused. The message is safe to show: it names no key, token, path or type.
/// </summary>
[GenerateSerializer, Alias("bastion.service-refused")]
public sealed class ServiceRefusedException : Exception
{
    /// <summary>A refusal for <paramref name="reason"/> with a message for people.</summary>
    public ServiceRefusedException(ServiceRefusal reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    /// <summary>A refusal with a generic message.</summary>
    public ServiceRefusedException()
        : this(ServiceRefusal.NotAuthenticated, "The call was refused.")
    {
    }

    /// <summary>A refusal with a generic reason.</summary>
    public ServiceRefusedException(string message)
        : this(ServiceRefusal.NotAuthenticated, message)
    {
    }

    /// <summary>A refusal wrapping another exception.</summary>
    public ServiceRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = ServiceRefusal.NotAuthenticated;
    }

    /// <summary>Why the call was refused.</summary>
    [Id(0)]
    public ServiceRefusal Reason { get; private set; }
}
