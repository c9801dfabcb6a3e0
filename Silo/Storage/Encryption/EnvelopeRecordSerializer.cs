using Orleans.Storage;

namespace Bastion.Storage;

/// <summary>
/// The inner ADO.NET storage's serializer: it writes an <see cref="EnvelopeRecord"/> as the bare
/// envelope bytes, so <c>PayloadBinary</c> is exactly an envelope (no framing, no type names), and
/// refuses any other type, so nothing can reach the table unsealed.
/// </summary>
public sealed class EnvelopeRecordSerializer : IGrainStorageSerializer
{
    public BinaryData Serialize<T>(T? input) =>
        input is EnvelopeRecord { Envelope: { } envelope }
            ? new BinaryData(envelope)
            : throw new InvalidOperationException($"Only sealed envelopes are stored; {typeof(T).Name} reached the inner grain storage unsealed.");

    public T Deserialize<T>(BinaryData input) =>
        typeof(T) == typeof(EnvelopeRecord)
            ? (T)(object)new EnvelopeRecord { Envelope = ArrayOf(input) }
            : throw new InvalidOperationException($"Only sealed envelopes are read; {typeof(T).Name} was asked of the inner grain storage.");

    // The ADO.NET storage wraps the array it read from the row; take that array rather than copy it.
    private static byte[] ArrayOf(BinaryData input) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(input.ToMemory(), out var segment) && segment is { Offset: 0, Array: { } array } && segment.Count == array.Length
            ? array
            : input.ToArray();
}
