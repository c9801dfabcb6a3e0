using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Bastion.Storage;

/// <summary>
/// Places a grain keyed by a silo address (<see cref="SiloAddress.ToParsableString"/>) on exactly that silo, so that
/// one activation per silo can act on that silo's memory. A key naming a silo that is not (or no longer) in the
/// cluster fails the call: there is nothing of that silo left to act on.
/// </summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class SiloPinnedPlacement : PlacementStrategy
{
    internal static readonly SiloPinnedPlacement Singleton = new();
}

/// <summary>Marks a grain class for <see cref="SiloPinnedPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class SiloPinnedPlacementAttribute() : PlacementAttribute(SiloPinnedPlacement.Singleton);

/// <summary>Puts the activation on the silo its key names.</summary>
public sealed class SiloPinnedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var wanted = SiloAddress.FromParsableString(target.GrainIdentity.Key.ToString());
        return context.GetCompatibleSilos(target).Contains(wanted)
            ? Task.FromResult(wanted)
            : throw new OrleansException($"Silo {wanted} is not an active member of the cluster; {target.GrainIdentity.Type} cannot be placed there.");
    }
}
