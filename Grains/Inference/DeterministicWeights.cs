using System.Runtime.InteropServices;

namespace Bastion.Inference;

/// <summary>
/// A seeded stream of bell-shaped weights that is bit-identical on every machine and runtime.
/// </summary>
/// <remarks>
/// Written out rather than taken from <see cref="Random"/> because that type's sequence is not a
/// compatibility promise across .NET versions. Box–Muller is avoided for the same reason:
/// <see cref="Math.Log(double)"/> and <see cref="Math.Cos"/> come from the platform's libm, which
/// need not round identically everywhere, and one differing bit would change the pinned digest.
/// Here every value is a sum of four 16-bit uniforms (Irwin–Hall, close to a normal), built only
/// from integer arithmetic and IEEE-exact double operations.
/// </remarks>
internal sealed class DeterministicWeights(ulong seed)
{
    // Sum of four uniform integers on [0, 65535]: mean 131070, variance (65536^2 - 1) / 3.
    private const double SumMean = 131070.0;
    private static readonly double InverseSumStd = 1.0 / Math.Sqrt(((65536.0 * 65536.0) - 1.0) / 3.0);

    private ulong _state = seed;

    /// <summary>Fills <paramref name="destination"/> with values of mean zero and the given standard deviation.</summary>
    public void Fill(Span<float> destination, double std)
    {
        var scale = InverseSumStd * std;
        for (var i = 0; i < destination.Length; i++)
        {
            var bits = NextUInt64();
            var sum = (bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) + ((bits >> 32) & 0xFFFF) + (bits >> 48);
            destination[i] = (float)((sum - SumMean) * scale);
        }
    }

    /// <summary>Little-endian float32 bytes of <paramref name="count"/> values, as ONNX raw_data wants them.</summary>
    public byte[] NextTensorBytes(long count, double std)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; this builder only runs on little-endian hosts.");
        }

        var bytes = new byte[checked(count * sizeof(float))];
        Fill(MemoryMarshal.Cast<byte, float>(bytes.AsSpan()), std);
        return bytes;
    }

    // SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and well distributed for a fixed seed.
    private ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
