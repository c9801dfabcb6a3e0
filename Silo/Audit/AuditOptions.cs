using System.ComponentModel.DataAnnotations;

namespace Bastion.Audit;

/// <summary>The audit trail (<c>Bastion:Audit</c>; docs/audit.md).</summary>
public sealed class AuditOptions
{
    public const string SectionName = "Bastion:Audit";

    /// <summary>A seal is written at the latest after this many records (and with the first batch, when the trail has no seal yet).</summary>
    [Range(1, 1_000_000)]
    public int SealEveryRecords { get; set; } = 1000;

    /// <summary>A seal is written at the latest this long after the previous one, when records were added since.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan SealInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often each silo verifies the records and seals added since its last check (the <c>bastion_audit_chain_intact</c> metric).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan VerifyInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long records are kept: <c>audit prune</c> deletes sealed records older than this.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "36500.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(400);

    /// <summary>Records waiting to be written, at most; more wait for room (nothing is dropped).</summary>
    [Range(100, 1_000_000)]
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>How often the authentication failures a silo saw are written as one summary record.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan FailureSummaryInterval { get; set; } = TimeSpan.FromMinutes(1);
}
