using System.Security.Cryptography;
using System.Text;
using Bastion.Security;

namespace Bastion.Tests.Silo.Security;

/// <summary>
/// API-key ids are tagged, and secrets hashed, each under a key of its own purpose; rotating either keeps every
/// issued key working. Expected values are HMAC-SHA-256 computed here from the format in the docs, not by ApiKeys.
/// </summary>
public sealed class ApiKeysTests
{
    private static readonly byte[] Pseudonym = Key(0x10);

    [Fact]
    public void IssuedId_StaysIssuedAfterTheIdKeyRotates_AndFailsOnceItsVersionIsGone()
    {
        var keys = new Keys { IdKeys = [new VersionedSecret(1, Key(0x21))] };
        var (keyId, _, _, _) = new ApiKeys(keys).Generate();
        Assert.Equal(Tag(Key(0x21), keyId[..16]), keyId[16..]);

        keys.IdKeys = [new VersionedSecret(1, Key(0x21)), new VersionedSecret(2, Key(0x22))];
        var (newId, _, _, _) = new ApiKeys(keys).Generate();

        Assert.Equal(Tag(Key(0x22), newId[..16]), newId[16..]);
        Assert.True(new ApiKeys(keys).IsIssuedKeyId(keyId));
        Assert.True(new ApiKeys(keys).IsIssuedKeyId(newId));

        keys.IdKeys = [new VersionedSecret(2, Key(0x22))];
        Assert.False(new ApiKeys(keys).IsIssuedKeyId(keyId));
        Assert.True(new ApiKeys(keys).IsIssuedKeyId(newId));
    }

    [Fact]
    public void IdTaggedUnderThePseudonymKey_IsNotIssued()
    {
        var keys = new Keys { IdKeys = [new VersionedSecret(1, Key(0x21))] };
        const string random = "0123456789abcdef";

        Assert.False(new ApiKeys(keys).IsIssuedKeyId(random + Tag(Pseudonym, random)));
        Assert.True(new ApiKeys(keys).IsIssuedKeyId(random + Tag(Key(0x21), random)));
        Assert.False(new ApiKeys(keys).IsIssuedKeyId(random + "00000000"));
        Assert.False(new ApiKeys(keys).IsIssuedKeyId(random));
    }

    [Fact]
    public void HashPresented_GivesOneHashPerEnabledVersion_AndGenerateHashesUnderTheCurrentOne()
    {
        var keys = new Keys { HashingKeys = [new VersionedSecret(1, Key(0x31)), new VersionedSecret(2, Key(0x32))] };
        var (keyId, apiKey, storedHash, version) = new ApiKeys(keys).Generate();
        Assert.True(ApiKeys.TrySplit(apiKey, out var presentedId, out var secret));

        var hashes = new ApiKeys(keys).HashPresented(presentedId, secret);

        Assert.Equal(2, version);
        Assert.Equal(Hash(Key(0x32), keyId, secret), storedHash);
        Assert.Equal([1, 2], hashes.Select(hash => hash.Version));
        Assert.Equal(Hash(Key(0x31), keyId, secret), hashes[0].Hash);
        Assert.Equal(Hash(Key(0x32), keyId, secret), hashes[1].Hash);
    }

    private static byte[] Key(byte fill) => Enumerable.Repeat(fill, 32).ToArray();

    private static string Tag(byte[] key, string random) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("api-key-id:" + random))[..4]);

    private static byte[] Hash(byte[] key, string keyId, string secret) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{keyId}:{secret}"));

    /// <summary>The pseudonym, key-id and hashing keys only; the last of each list is current.</summary>
    private sealed class Keys : PartialKeyProvider
    {
        public IReadOnlyList<VersionedSecret> IdKeys { get; set; } = [new VersionedSecret(1, Key(0x21))];

        public IReadOnlyList<VersionedSecret> HashingKeys { get; set; } = [new VersionedSecret(1, Key(0x31))];

        public override ReadOnlySpan<byte> PseudonymKey => Pseudonym;

        public override VersionedSecret CurrentApiKeyHashingKey => HashingKeys[^1];

        public override IReadOnlyList<VersionedSecret> ApiKeyHashingKeys => HashingKeys;

        public override VersionedSecret CurrentApiKeyIdKey => IdKeys[^1];

        public override IReadOnlyList<VersionedSecret> ApiKeyIdKeys => IdKeys;
    }
}
