namespace Bastion.Users;

/// <summary>The admin audit trail (a singleton keyed <c>"audit"</c>): the most recent administrative actions.</summary>
[Alias("bastion.audit-log")]
public interface IAuditLogGrain : IGrainWithStringKey
{
    /// <summary>The key of the one audit log.</summary>
    const string Key = "audit";

    /// <summary>Appends an event.</summary>
    [Alias("append")]
    Task AppendAsync(AuditEvent auditEvent);

    /// <summary>The newest events first.</summary>
    [Alias("read")]
    Task<IReadOnlyList<AuditEvent>> ReadAsync(int limit);
}

/// <summary>One administrative action. Users appear by pseudonym only.</summary>
/// <param name="Time">When it happened.</param>
/// <param name="ActorPseudonym">Who did it.</param>
/// <param name="Action">What was done, e.g. <c>user.suspend</c>.</param>
/// <param name="TargetPseudonym">Whom it was done to, if anyone.</param>
/// <param name="Status">The HTTP status it ended with.</param>
[GenerateSerializer, Immutable, Alias("bastion.audit-event")]
public sealed record AuditEvent(
    [property: Id(0)] DateTimeOffset Time,
    [property: Id(1)] string ActorPseudonym,
    [property: Id(2)] string Action,
    [property: Id(3)] string? TargetPseudonym,
    [property: Id(4)] int Status);
