namespace Bastion.Audit;

/// <summary>
/// The tamper-evident audit trail (docs/audit.md): every security event, appended to an append-only, hash-chained,
/// sealed and encrypted PostgreSQL table. Each silo writes through its own instance; records of all silos form one chain.
/// </summary>
public interface IAuditTrail
{
    /// <summary>Appends <paramref name="record"/> and completes once it is durable (committed in the chain).</summary>
    /// <exception cref="AuditUnavailableException">The trail cannot be written (database or keys unavailable).</exception>
    Task RecordAsync(AuditRecord record);

    /// <summary>
    /// Queues <paramref name="record"/> for the next batch without waiting for it to be committed: for high-volume
    /// metadata (one record per inference) whose loss in a crash is tolerable. Waits only while the queue is full.
    /// </summary>
    ValueTask EnqueueAsync(AuditRecord record);
}

/// <summary>
/// One security event. Users appear by pseudonym only; never a user id, key secret, token, prompt or completion.
/// </summary>
/// <param name="Time">When it happened.</param>
/// <param name="Action">What happened, dotted: <c>user.suspend</c>, <c>auth.failures</c>, <c>inference</c>, <c>anomaly.throttle</c>.</param>
/// <param name="Actor">Who did it: a pseudonym, <c>bootstrap</c>, <c>operator</c>, <c>system</c>; null when unknown (failed authentication).</param>
/// <param name="Target">Whom it was done to (a pseudonym), if anyone.</param>
/// <param name="Outcome">How it ended: the HTTP status for requests (<c>200</c>, <c>403</c>), otherwise a word (<c>ok</c>, <c>refused</c>, <c>blocked</c>).</param>
/// <param name="Detail">Non-secret facts: key ids, model, token counts, signal names, counts.</param>
public sealed record AuditRecord(
    DateTimeOffset Time,
    string Action,
    string? Actor,
    string? Target,
    string Outcome,
    IReadOnlyDictionary<string, string>? Detail = null);

/// <summary>The audit trail could not record an event; whatever depended on recording it did not happen or must not be reported as done.</summary>
public sealed class AuditUnavailableException(string message, Exception? innerException = null) : Exception(message, innerException);
