namespace Bastion.Storage;

/// <summary>
/// Tells every active silo that a scope's data keys were destroyed: each evicts and zeroes its cached copies, so no
/// silo goes on opening or sealing the erased state with a key that exists only in its memory.
/// </summary>
/// <remarks>
/// A call per member of the current membership snapshot, to that member's <see cref="IDataKeyEvictionGrain"/>. It
/// throws when any silo does not answer, and the erasure that sent it fails and is retried: a silo that died holds no
/// key any more, and once the membership has declared it dead the retry no longer asks it. A silo that joins after the
/// snapshot reads the destroyed key from the key store and gets nothing.
/// </remarks>
public sealed class DataKeyEvictionBroadcast(IClusterMembershipService membership, IGrainFactory grains)
{
    /// <summary>Evicts <paramref name="scope"/>'s keys from every active silo's cache; completes when all have.</summary>
    public Task EvictEverywhereAsync(string scope) =>
        Task.WhenAll(membership.CurrentSnapshot.Members.Values
            .Where(member => member.Status == SiloStatus.Active)
            .Select(member => grains.GetGrain<IDataKeyEvictionGrain>(member.SiloAddress.ToParsableString()).EvictAsync(scope)));
}
