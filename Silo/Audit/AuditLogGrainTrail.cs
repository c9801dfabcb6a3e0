using Bastion.Users;

namespace Bastion.Audit;

/// <summary>Interim: forwards audit records to the audit-log grain until the PostgreSQL trail replaces it.</summary>
internal sealed class AuditLogGrainTrail(IGrainFactory grains) : IAuditTrail
{
    public Task RecordAsync(AuditRecord record) =>
        grains.GetGrain<IAuditLogGrain>(IAuditLogGrain.Key).AppendAsync(new AuditEvent(
            record.Time, record.Actor ?? "unknown", record.Action, record.Target, int.TryParse(record.Outcome, out var status) ? status : 0));

    public async ValueTask EnqueueAsync(AuditRecord record) => await RecordAsync(record);
}
