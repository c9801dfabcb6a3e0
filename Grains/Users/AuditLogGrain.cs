namespace Bastion.Users;

/// <summary>Keeps the most recent administrative actions, oldest dropped first.</summary>
[GrainType("bastion.audit-log")]
public sealed class AuditLogGrain(
    [PersistentState("audit-log", StorageNames.Bastion)] IPersistentState<AuditLogState> state) : Grain, IAuditLogGrain
{
    /// <summary>How many events are kept; older ones belong in the log pipeline, which gets every event too.</summary>
    public const int Capacity = 1000;

    public async Task AppendAsync(AuditEvent auditEvent)
    {
        state.State.Events.Add(auditEvent);
        if (state.State.Events.Count > Capacity)
        {
            state.State.Events.RemoveRange(0, state.State.Events.Count - Capacity);
        }

        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<AuditEvent>> ReadAsync(int limit) =>
        Task.FromResult<IReadOnlyList<AuditEvent>>([.. Enumerable.Reverse(state.State.Events).Take(limit)]);
}

/// <summary>The persisted audit trail.</summary>
[GenerateSerializer, Alias("bastion.audit-log-state")]
public sealed class AuditLogState
{
    [Id(0)] public List<AuditEvent> Events { get; set; } = [];
}
