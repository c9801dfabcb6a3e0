namespace Bastion.Storage;

/// <summary>What the inner ADO.NET storage persists for every grain state: one sealed envelope.</summary>
public sealed class EnvelopeRecord
{
    /// <summary>The envelope (<see cref="EnvelopeCipher"/>), or null when nothing is stored.</summary>
    public byte[]? Envelope { get; set; }
}
