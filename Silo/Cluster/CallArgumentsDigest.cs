using System.Buffers;
using System.Security.Cryptography;
using Orleans.Serialization;
using Orleans.Serialization.Invocation;

namespace Bastion.Cluster;

/// <summary>
/// SHA-256 over a call's arguments in Orleans' own wire encoding, which both ends compute alike: the sender on the
/// arguments it passes, the receiver on the ones it deserialized. A cancellation token is not an argument that
/// travels (the receiver gets its own), so it is left out.
/// </summary>
public sealed class CallArgumentsDigest(Serializer serializer)
{
    /// <summary>The digest of <paramref name="request"/>'s arguments.</summary>
    public byte[] Of(IInvokable request)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new ArrayBufferWriter<byte>();
        Span<byte> length = stackalloc byte[sizeof(int)];
        for (var i = 0; i < request.GetArgumentCount(); i++)
        {
            var argument = request.GetArgument(i);
            if (argument is CancellationToken)
            {
                continue;
            }

            buffer.ResetWrittenCount();
            serializer.Serialize(argument, buffer);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, buffer.WrittenCount);
            hash.AppendData(length);
            hash.AppendData(buffer.WrittenSpan);
        }

        return hash.GetHashAndReset();
    }
}
