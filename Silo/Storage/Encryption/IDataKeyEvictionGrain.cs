namespace Bastion.Storage;

/// <summary>
/// One per silo (keyed by the silo's address, <see cref="SiloPinnedPlacement"/>): drops that silo's cached data keys of
/// a scope whose keys were destroyed. Called by <see cref="DataKeyEvictionBroadcast"/>, never by clients.
/// </summary>
[Alias("bastion.data-key-eviction")]
public interface IDataKeyEvictionGrain : IGrainWithStringKey
{
    /// <summary>Evicts and zeroes this silo's cached keys of <paramref name="scope"/>.</summary>
    [Alias("evict")]
    Task EvictAsync(string scope);
}
