using Bastion.Generation;
using Bastion.Storage;

namespace Bastion.Api;

/// <summary>
/// The models the cluster serves, as <c>GET /v1/models</c> lists them: each active silo is asked for its own catalog,
/// through a grain pinned to it (<see cref="ISiloModelsGrain"/>), so an API-only silo, which loads no model, lists its
/// workers'. A silo that does not answer within <see cref="AnswerTimeout"/> (it is dying, and membership has not said
/// so yet) is left out rather than failing the list.
/// </summary>
public sealed class ClusterModels(IGrainFactory grains, IClusterMembershipService membership)
{
    internal static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(5);

    public async Task<IReadOnlyList<ServedModel>> ListAsync()
    {
        var answers = await Task.WhenAll(membership.CurrentSnapshot.Members.Values
            .Where(member => member.Status == SiloStatus.Active)
            .Select(member => AskAsync(member.SiloAddress)));
        return Merge(answers.SelectMany(models => models));
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

    private async Task<IReadOnlyList<ServedModel>> AskAsync(SiloAddress silo)
    {
        try
        {
            return await grains.GetGrain<ISiloModelsGrain>(silo.ToParsableString()).ListAsync().WaitAsync(AnswerTimeout);
        }
        catch (Exception exception) when (exception is OrleansException or TimeoutException)
        {
            return [];
        }
    }
}

/// <summary>One per silo (keyed by the silo's address, <see cref="SiloPinnedPlacement"/>): the models that silo serves.</summary>
[Alias("bastion.silo-models")]
public interface ISiloModelsGrain : IGrainWithStringKey
{
    [Alias("list")]
    Task<ServedModel[]> ListAsync();
}

/// <summary>Reads the catalog of the silo it is pinned to; an API-only silo's is empty.</summary>
[GrainType("bastion.silo-models")]
[SiloPinnedPlacement]
public sealed class SiloModelsGrain(ModelCatalog catalog) : Grain, ISiloModelsGrain
{
    public Task<ServedModel[]> ListAsync() => Task.FromResult<ServedModel[]>([.. catalog.Served]);
}
