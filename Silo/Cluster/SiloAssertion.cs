using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Bastion.Security;

namespace Bastion.Cluster;

/// <summary>
/// What a silo attaches to every call it makes: <c>{unix seconds}.{base64url HMAC-SHA256}</c> over the time, the
/// target grain id, the interface and the method, under the cluster-assertion key that only silos hold. A captured
/// assertion opens nothing but the same method on the same grain, and only for <see cref="Window"/> around its time.
/// </summary>
public sealed class SiloAssertion(IKeyProvider keys, TimeProvider time)
{
    /// <summary>How far an assertion's time may be from the receiving silo's clock (either way): clocks of silos differ a little.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(30);

    /// <summary>An assertion for a call to <paramref name="method"/> of <paramref name="interfaceType"/> on <paramref name="target"/>, made now.</summary>
    public string Create(GrainId target, GrainInterfaceType interfaceType, string method)
    {
        var seconds = time.GetUtcNow().ToUnixTimeSeconds();
        return seconds.ToString(CultureInfo.InvariantCulture) + "." + System.Buffers.Text.Base64Url.EncodeToString(Mac(seconds, target, interfaceType, method));
    }

    /// <summary>Whether <paramref name="assertion"/> was made by a silo, recently, for exactly this call.</summary>
    public bool Verify(string? assertion, GrainId target, GrainInterfaceType interfaceType, string method)
    {
        var dot = assertion?.IndexOf('.', StringComparison.Ordinal) ?? -1;
        if (dot <= 0
            || !long.TryParse(assertion.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || Math.Abs(time.GetUtcNow().ToUnixTimeSeconds() - seconds) > (long)Window.TotalSeconds)
        {
            return false;
        }

        Span<byte> presented = stackalloc byte[HMACSHA256.HashSizeInBytes];
        return System.Buffers.Text.Base64Url.TryDecodeFromChars(assertion.AsSpan(dot + 1), presented, out var written)
            && written == presented.Length
            && CryptographicOperations.FixedTimeEquals(presented, Mac(seconds, target, interfaceType, method));
    }

    private byte[] Mac(long seconds, GrainId target, GrainInterfaceType interfaceType, string method) =>
        HMACSHA256.HashData(keys.ClusterAssertionKey, Encoding.UTF8.GetBytes($"bastion-silo-call/v1\n{seconds}\n{target}\n{interfaceType}\n{method}"));
}
