namespace Bastion.Access;

/// <summary>
/// The cluster's emergency switches (a singleton keyed <c>"emergency"</c>), for incident response
/// (deploy/incident-response.md): stop inference, and freeze the administrative changes that grant access.
/// Every silo reads them through <c>EmergencySwitchboard</c>, at most <c>EmergencySwitchboard.MaxAge</c> old.
/// </summary>
[Alias("bastion.emergency")]
public interface IEmergencyGrain : IGrainWithStringKey
{
    /// <summary>The key of the one switch grain.</summary>
    const string Key = "emergency";

    /// <summary>The switches as they are.</summary>
    [Alias("get")]
    Task<EmergencySwitches> GetAsync();

    /// <summary>Sets both switches (durably) and returns them.</summary>
    [Alias("set")]
    Task<EmergencySwitches> SetAsync(EmergencySwitches switches);
}

/// <summary>The emergency switches; both off in normal operation.</summary>
/// <param name="InferenceStopped">No new generation starts anywhere (503 <c>inference-stopped</c>); running ones finish.</param>
/// <param name="ChangesFrozen">
/// Administrative changes that create or widen access are refused (409 <c>changes-frozen</c>): creating users, issuing API
/// keys, changing roles or limits, resuming a suspended user, erasing a user. Containment (suspend, revoke a key, revoke
/// tokens), key rotation and every read keep working.
/// </param>
[GenerateSerializer, Immutable, Alias("bastion.emergency-switches")]
public sealed record EmergencySwitches(
    [property: Id(0)] bool InferenceStopped,
    [property: Id(1)] bool ChangesFrozen)
{
    /// <summary>Normal operation.</summary>
    public static EmergencySwitches Off { get; } = new(false, false);
}
