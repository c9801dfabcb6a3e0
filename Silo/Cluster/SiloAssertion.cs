using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Bastion.Security;

namespace Bastion.Cluster;

/// <summary>
/// What a silo attaches to every call it makes: <c>{key version}.{unix seconds}.{base64url HMAC-SHA256}</c> over the
/// key version, the time, the sender, the target grain, the interface, the method and a digest of the arguments, under
/// the cluster-assertion key that only silos hold. A captured assertion opens nothing but the very same call (same
/// sender, target, method and arguments), and only for <see cref="Window"/> around its time. Every enabled key
/// version verifies, so the key rotates without a cluster-wide restart.
/// </summary>
public sealed class SiloAssertion(IKeyProvider keys, TimeProvider time)
{
    /// <summary>How far an assertion's time may be from the receiving silo's clock (either way): clocks of silos differ a little.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(30);

    /// <summary>An assertion for <paramref name="call"/>, made now with the current key.</summary>
    public string Create(SiloCall call)
    {
        var key = keys.CurrentClusterAssertionKey;
        var seconds = time.GetUtcNow().ToUnixTimeSeconds();
        return string.Create(CultureInfo.InvariantCulture, $"{key.Version}.{seconds}.") + System.Buffers.Text.Base64Url.EncodeToString(Mac(key, seconds, call));
    }

    /// <summary>Whether <paramref name="assertion"/> was made by a silo, recently, for exactly <paramref name="call"/>.</summary>
    public bool Verify(string? assertion, SiloCall call)
    {
        if (assertion is null)
        {
            return false;
        }

        var parts = assertion.AsSpan();
        Span<Range> ranges = stackalloc Range[4];
        if (parts.Split(ranges, '.') != 3
            || !int.TryParse(parts[ranges[0]], NumberStyles.None, CultureInfo.InvariantCulture, out var version)
            || !long.TryParse(parts[ranges[1]], NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || Math.Abs(time.GetUtcNow().ToUnixTimeSeconds() - seconds) > (long)Window.TotalSeconds
            || keys.FindClusterAssertionKey(version) is not { } key)
        {
            return false;
        }

        Span<byte> presented = stackalloc byte[HMACSHA256.HashSizeInBytes];
        return System.Buffers.Text.Base64Url.TryDecodeFromChars(parts[ranges[2]], presented, out var written)
            && written == presented.Length
            && CryptographicOperations.FixedTimeEquals(presented, Mac(key, seconds, call));
    }

    private static byte[] Mac(VersionedSecret key, long seconds, SiloCall call)
    {
        var header = Encoding.UTF8.GetBytes(string.Create(
            CultureInfo.InvariantCulture,
            $"bastion-silo-call/v2\n{key.Version}\n{seconds}\n{call.Source?.ToString() ?? "-"}\n{call.Target}\n{call.Interface}\n{call.Method}\n"));
        using var mac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.Key);
        mac.AppendData(header);
        mac.AppendData(call.ArgumentsDigest.Span);
        return mac.GetHashAndReset();
    }
}

/// <summary>One grain call as both silos see it: who sends it, to which grain, which method, and a digest of its arguments.</summary>
/// <param name="Source">The sending grain or client, when the runtime names one.</param>
/// <param name="Target">The target grain or system target.</param>
/// <param name="Interface">The interface the method belongs to.</param>
/// <param name="Method">The method's name.</param>
/// <param name="ArgumentsDigest">SHA-256 of the serialized arguments (<see cref="CallArgumentsDigest"/>).</param>
public readonly record struct SiloCall(GrainId? Source, GrainId Target, GrainInterfaceType Interface, string Method, ReadOnlyMemory<byte> ArgumentsDigest);
