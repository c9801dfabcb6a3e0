namespace Bastion.Storage;

/// <summary>Evicts destroyed data keys from the <see cref="DataKeyStore"/> cache of the silo it is pinned to.</summary>
[GrainType("bastion.data-key-eviction")]
[SiloPinnedPlacement]
public sealed class DataKeyEvictionGrain(DataKeyStore dataKeys, ILocalSiloDetails silo, ILogger<DataKeyEvictionGrain> logger) : Grain, IDataKeyEvictionGrain
{
    public Task EvictAsync(string scope)
    {
        // Placement guarantees it; a wrong silo would leave the key cached where it was meant to go.
        if (!string.Equals(this.GetPrimaryKeyString(), silo.SiloAddress.ToParsableString(), StringComparison.Ordinal))
        {
            throw new InvalidOperationException("A data-key eviction ran on a silo other than the one it was addressed to.");
        }

        dataKeys.Evict(scope);
        StorageLog.EvictedErasedScope(logger);
        return Task.CompletedTask;
    }
}
