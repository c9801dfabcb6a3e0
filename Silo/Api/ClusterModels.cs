using Bastion.Generation;

namespace Bastion.Api;

/// <summary>
/// The models the cluster serves, as <c>GET /v1/models</c> lists them: what every live worker silo last reported to the
/// worker-load board (each reports its models with its load every second), plus this silo's own when it is a worker
/// too, so a single node lists its models the moment it starts. An API-only silo loads no model and lists its
/// workers'. A worker that stopped drops out at once when membership declares it dead, and within the board's
/// expiry otherwise.
/// </summary>
public sealed class ClusterModels(IGrainFactory grains, IClusterMembershipService membership, ModelCatalog local)
{
    public async Task<IReadOnlyList<ServedModel>> ListAsync()
    {
        var reports = await grains.GetGrain<IWorkerLoadGrain>(IWorkerLoadGrain.Key).ReadAsync();
        var members = membership.CurrentSnapshot;
        return Merge(reports.Where(r => members.GetSiloStatus(r.Silo) == SiloStatus.Active).SelectMany(r => r.Models ?? []).Concat(local.Served));
    }

    /// <summary>
    /// One entry per name, ordered by name: created when the first worker loaded it, and the smallest context any
    /// worker gives it, since a request may land on any of them.
    /// </summary>
    public static IReadOnlyList<ServedModel> Merge(IEnumerable<ServedModel> models) =>
    [
        .. models.GroupBy(m => m.Name, StringComparer.Ordinal)
            .Select(same => same.MinBy(m => m.Created)! with { ContextLength = same.Min(m => m.ContextLength) })
            .OrderBy(m => m.Name, StringComparer.Ordinal),
    ];
}
