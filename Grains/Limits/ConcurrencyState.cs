namespace Bastion.Limits;

/// <summary>The persisted leases of one user's concurrent generations: lease id to expiry.</summary>
[GenerateSerializer, Alias("bastion.concurrency-state")]
public sealed class ConcurrencyState
{
    [Id(0)] public Dictionary<Guid, DateTimeOffset> Leases { get; set; } = [];
}
