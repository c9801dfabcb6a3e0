using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Bastion.Security;

/// <summary>
/// Turns a client address into what a user grain may hold of it: a keyed hash of its network (IPv4 /24, IPv6 /48),
/// per user, so the grain can tell a new network from a known one while its state names no address, and the same
/// network hashes differently for two users (no linking of users through their state). The key is derived from the
/// pseudonym key with HKDF under a label of its own, so it serves this purpose only and lives as long as pseudonyms do.
/// </summary>
public sealed class ClientNetworks
{
    private static readonly byte[] Purpose = Encoding.UTF8.GetBytes("bastion/client-network/v1");

    private readonly byte[] _key;

    public ClientNetworks(IKeyProvider keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _key = HKDF.DeriveKey(HashAlgorithmName.SHA256, keys.PseudonymKey.ToArray(), 32, salt: [], info: Purpose);
    }

    /// <summary>The hash of <paramref name="address"/>'s network for the user <paramref name="pseudonym"/>, or null when the address is unknown.</summary>
    public string? Hash(string pseudonym, IPAddress? address)
    {
        if (address is null)
        {
            return null;
        }

        var bytes = (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).GetAddressBytes();
        var network = bytes.Length == 16 ? bytes.AsSpan(0, 6) : bytes.AsSpan(0, 3);
        var user = Encoding.UTF8.GetBytes(pseudonym);
        var input = new byte[user.Length + 1 + network.Length];
        user.CopyTo(input, 0);
        network.CopyTo(input.AsSpan(user.Length + 1));
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, input, mac);
        return "n_" + System.Buffers.Text.Base64Url.EncodeToString(mac[..16]);
    }
}
