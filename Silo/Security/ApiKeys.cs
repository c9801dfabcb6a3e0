using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Bastion.Access;

namespace Bastion.Security;

/// <summary>
/// API keys of the form <c>bst_</c> + a 24-hex-digit key id + <c>_</c> + a 256-bit random secret
/// (base64url). The id routes the key to its owner; only a keyed hash of the secret is stored.
/// The id is 64 random bits plus a 32-bit MAC of them, so the edge refuses an invented id without
/// touching a grain or the database.
/// </summary>
public sealed class ApiKeys(IKeyProvider keys)
{
    private const string Prefix = "bst_";
    private const int KeyIdLength = 24;
    private const int SecretLength = 43;
    private const int RandomIdBytes = 8;
    private const int TagBytes = 4;

    /// <summary>The length of every API key.</summary>
    public const int Length = 4 + KeyIdLength + 1 + SecretLength;

    /// <summary>A new key: its id, the full key to show once, and the hash to store.</summary>
    public (string KeyId, string ApiKey, byte[] SecretHash, int HashKeyVersion) Generate()
    {
        var random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(RandomIdBytes));
        var keyId = random + Convert.ToHexStringLower(Tag(keys.CurrentApiKeyIdKey, random));
        var secret = System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var hashingKey = keys.CurrentApiKeyHashingKey;
        return (keyId, $"{Prefix}{keyId}_{secret}", Hash(hashingKey.Key, keyId, secret), hashingKey.Version);
    }

    /// <summary>True when <paramref name="token"/> looks like an API key rather than a JWT.</summary>
    public static bool LooksLikeApiKey(string token) => token.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Splits a presented key into id and secret; false when its shape is wrong.</summary>
    public static bool TrySplit(string apiKey, [NotNullWhen(true)] out string? keyId, [NotNullWhen(true)] out string? secret)
    {
        keyId = secret = null;
        if (apiKey.Length != Length || !LooksLikeApiKey(apiKey) || apiKey[Prefix.Length + KeyIdLength] != '_')
        {
            return false;
        }

        var id = apiKey.AsSpan(Prefix.Length, KeyIdLength);
        var rest = apiKey.AsSpan(Prefix.Length + KeyIdLength + 1);
        if (!IsWellFormedKeyId(id) || !System.Buffers.Text.Base64Url.IsValid(rest))
        {
            return false;
        }

        keyId = id.ToString();
        secret = rest.ToString();
        return true;
    }

    /// <summary>True when <paramref name="keyId"/> has the shape of a key id (24 lower-case hex digits), issued or not.</summary>
    public static bool IsWellFormedKeyId(ReadOnlySpan<char> keyId) => keyId.Length == KeyIdLength && keyId.IndexOfAnyExcept("0123456789abcdef") < 0;

    /// <summary>
    /// True when the key id carries a valid tag under any enabled key-id key, i.e. Bastion issued it (compared in
    /// constant time). Every enabled version is tried, so rotating the key-id key never invalidates issued ids.
    /// </summary>
    public bool IsIssuedKeyId(string keyId)
    {
        if (keyId.Length != KeyIdLength)
        {
            return false;
        }

        var random = keyId[..(RandomIdBytes * 2)];
        var presented = Convert.FromHexString(keyId.AsSpan(RandomIdBytes * 2));
        var issued = false;
        foreach (var idKey in keys.ApiKeyIdKeys)
        {
            issued |= CryptographicOperations.FixedTimeEquals(Tag(idKey, random), presented);
        }

        return issued;
    }

    private static byte[] Tag(VersionedSecret idKey, string randomId) =>
        HMACSHA256.HashData(idKey.Key, Encoding.UTF8.GetBytes("api-key-id:" + randomId))[..TagBytes];

    /// <summary>
    /// The keyed hashes of a presented secret under every enabled hashing key: the owner's grain compares the one
    /// made with the version stored beside the key, so keys hashed before a rotation keep working.
    /// </summary>
    public SecretHash[] HashPresented(string keyId, string secret) =>
        [.. keys.ApiKeyHashingKeys.Select(hashingKey => new SecretHash(hashingKey.Version, Hash(hashingKey.Key, keyId, secret)))];

    private static byte[] Hash(byte[] hashingKey, string keyId, string secret) =>
        HMACSHA256.HashData(hashingKey, Encoding.UTF8.GetBytes($"{keyId}:{secret}"));
}
