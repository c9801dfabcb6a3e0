namespace Bastion.Storage;

/// <summary>An unwrapped data key (DEK) with the id that envelopes name and the KEK version that wraps it.</summary>
/// <param name="Id">The DEK id, written into every envelope it seals.</param>
/// <param name="KekVersion">The key-encryption key version its stored copy is wrapped with.</param>
/// <param name="Key">The 32 key bytes.</param>
public sealed record DataKey(Guid Id, int KekVersion, byte[] Key)
{
    /// <summary>Never print key material.</summary>
    public override string ToString() => $"data key {Id} (KEK version {KekVersion})";
}
