namespace Bastion.Access;

/// <summary>Why a request was refused. The HTTP layer maps every authentication reason to one identical 401.</summary>
public enum DenialReason
{
    /// <summary>Allowed.</summary>
    None = 0,

    /// <summary>The user, key or token is unknown, expired, revoked or does not match.</summary>
    NotAuthenticated = 1,

    /// <summary>The user is suspended.</summary>
    Suspended = 2,

    /// <summary>Authenticated, but no role grants the permission.</summary>
    Forbidden = 3,

    /// <summary>Allowed, but a rate limit, quota or concurrency limit is exhausted.</summary>
    LimitExceeded = 4,
}

/// <summary>The user grain's verdict on one request.</summary>
/// <param name="Reason">Why it was denied, or <see cref="DenialReason.None"/>.</param>
/// <param name="RevocationGeneration">The user's current token revocation generation (what a new access token carries).</param>
[GenerateSerializer, Immutable, Alias("bastion.access-decision")]
public sealed record AccessDecision(
    [property: Id(0)] DenialReason Reason,
    [property: Id(2)] long RevocationGeneration)
{
    /// <summary>True when the request may proceed.</summary>
    public bool IsAllowed => Reason == DenialReason.None;

    /// <summary>A denial for the given reason.</summary>
    public static AccessDecision Deny(DenialReason reason) => new(reason, 0);
}
