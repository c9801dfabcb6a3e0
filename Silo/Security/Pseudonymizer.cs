using System.Security.Cryptography;
using System.Text;

namespace Bastion.Security;

/// <summary>
/// Turns a user id into the pseudonym that keys the user's grain and appears in logs: an HMAC of
/// the id under the pseudonym key, so no stored row or log line names a user.
/// </summary>
public sealed class Pseudonymizer(IKeyProvider keys)
{
    /// <summary>The pseudonym of <paramref name="userId"/>.</summary>
    public string Pseudonymize(string userId)
    {
        Span<byte> hash = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(keys.PseudonymKey, Encoding.UTF8.GetBytes(userId), hash);
        return "u_" + System.Buffers.Text.Base64Url.EncodeToString(hash);
    }
}
