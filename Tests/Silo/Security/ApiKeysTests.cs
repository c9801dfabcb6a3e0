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

    // The format, written out: "bst_", 24 lowercase hex digits, "_", 43 base64url characters (72 in all).
    private const string Id = "0123456789abcdef01234567";
    private const string Secret = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234";

    [Fact]
    public void TrySplit_AWellFormedKey_GivesItsIdAndSecret()
    {
        Assert.Equal(72, ApiKeys.Length);
        Assert.True(ApiKeys.TrySplit($"bst_{Id}_{Secret}", out var keyId, out var secret));
        Assert.Equal(Id, keyId);
        Assert.Equal(Secret, secret);
    }

    [Theory]
    [InlineData("bst_" + Id + "_" + Secret + "A")] // one character too long
    [InlineData("bst_" + Id + "_" + "bcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234")] // one too short
    [InlineData("bsT_" + Id + "_" + Secret)] // prefix
    [InlineData("xbst" + Id + "_" + Secret)]
    [InlineData("bst_" + Id + "-" + Secret)] // separator
    [InlineData("bst_0123456789abcdef0123456_7" + Secret)] // separator one place early
    [InlineData("bst_0123456789ABCDEF01234567_" + Secret)] // uppercase hex
    [InlineData("bst_0123456789abcdeg01234567_" + Secret)] // not hex
    [InlineData("bst_g123456789abcdef01234567_" + Secret)] // not hex, first
    [InlineData("bst_" + Id + "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ+/01234")] // base64, not base64url
    [InlineData("bst_" + Id + "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123=")] // padding
    [InlineData("bst_" + Id + "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0 234")]
    [InlineData("")]
    public void TrySplit_AnyOtherShape_IsRefused(string apiKey)
    {
        Assert.False(ApiKeys.TrySplit(apiKey, out var keyId, out var secret));
        Assert.Null(keyId);
        Assert.Null(secret);
    }

    [Theory]
    [InlineData("bst_", true)]
    [InlineData("bst_x", true)]
    [InlineData("BST_x", false)]
    [InlineData("eyJhbGciOi", false)]
    [InlineData("bst", false)]
    public void LooksLikeApiKey_IsThePrefix(string token, bool expected) => Assert.Equal(expected, ApiKeys.LooksLikeApiKey(token));

    [Theory]
    [InlineData("0123456789abcdef0123456")] // 23
    [InlineData("0123456789abcdef012345678")] // 25
    [InlineData("")]
    public void IsIssuedKeyId_WrongLength_IsNotIssued(string keyId) => Assert.False(new ApiKeys(new Keys()).IsIssuedKeyId(keyId));

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
