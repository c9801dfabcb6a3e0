using System.Security.Cryptography;
using System.Text;
using Bastion.Storage;

namespace Bastion.Tests.Silo.Storage.Encryption;

public sealed class EnvelopeCipherTests
{
    private static readonly DataKey Key = new(Guid.NewGuid(), 3, RandomNumberGenerator.GetBytes(EnvelopeCipher.KeySize));
    private static readonly byte[] Plaintext = Encoding.UTF8.GetBytes("alice's state");
    private static readonly byte[] Aad = EnvelopeCipher.AssociatedData("user", "user/u_alice", "user");

    [Fact]
    public void Open_SealedEnvelope_ReturnsPlaintextAndHeaderNamesKey()
    {
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, Key);

        Assert.Equal(Plaintext, EnvelopeCipher.Open(envelope, Aad, Key));
        Assert.Equal(new EnvelopeHeader(EnvelopeCipher.FormatVersion, Key.Id, 3), EnvelopeCipher.ReadHeader(envelope));
        Assert.Equal(-1, envelope.AsSpan().IndexOf(Plaintext));
    }

    [Fact]
    public void Seal_SamePlaintextTwice_UsesFreshNonces()
    {
        Assert.NotEqual(EnvelopeCipher.Seal(Plaintext, Aad, Key), EnvelopeCipher.Seal(Plaintext, Aad, Key));
    }

    [Fact]
    public void Open_EnvelopeCopiedOntoAnotherGrain_Fails()
    {
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, Key);

        Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, EnvelopeCipher.AssociatedData("user", "user/u_bob", "user"), Key));
        Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, EnvelopeCipher.AssociatedData("user", "user/u_alice", "other"), Key));
    }

    [Fact]
    public void AssociatedData_OfAGrainId_IsTheLengthPrefixedUtf8OfTypeKeyAndState()
    {
        // Pinned: every stored envelope's tag covers these bytes, so they may never change.
        var expected = Convert.FromHexString("0000000C" + Convert.ToHexString("bastion.user"u8) + "00000005" + Convert.ToHexString("u_ä1"u8) + "00000004" + Convert.ToHexString("user"u8));
        var grainId = GrainId.Create("bastion.user", "u_ä1");

        Assert.Equal(expected, EnvelopeCipher.AssociatedData(grainId.Type.AsSpan(), grainId.Key.AsSpan(), "user"));
        Assert.Equal(expected, EnvelopeCipher.AssociatedData("bastion.user", "u_ä1", "user"));
    }

    [Fact]
    public void Scope_OfAGrainId_IsTheUsersForTheUserGrainAndTheSystemsOtherwise()
    {
        Assert.Equal(DataKeyScope.ForUser("u_abc"), DataKeyScope.For(GrainId.Create(DataKeyScope.UserGrainType, "u_abc")));
        Assert.Equal(DataKeyScope.System, DataKeyScope.For(GrainId.Create("bastion.user-directory", "0")));
        Assert.Equal(DataKeyScope.System, DataKeyScope.For(GrainId.Create("bastion.userx", "u_abc")));
    }

    [Fact]
    public void AssociatedData_DifferentSplitsOfTheSameText_Differ()
    {
        Assert.NotEqual(EnvelopeCipher.AssociatedData("ab", "c", "d"), EnvelopeCipher.AssociatedData("a", "bc", "d"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(21)]
    [InlineData(30)]
    [InlineData(40)]
    [InlineData(-1)]
    public void Open_FlippedBit_Fails(int offset)
    {
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, Key);
        envelope[offset < 0 ? envelope.Length - 1 : offset] ^= 0x01;

        Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, Aad, Key));
    }

    [Fact]
    public void Open_WrongKeyWithTheSameId_Fails()
    {
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, Key);

        Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, Aad, new DataKey(Key.Id, Key.KekVersion, RandomNumberGenerator.GetBytes(32))));
        Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, Aad, new DataKey(Guid.NewGuid(), Key.KekVersion, Key.Key)));
    }

    [Fact]
    public void Seal_ThousandsOfTimesOnSeveralThreads_NeverRepeatsANonce()
    {
        // Nonces come from per-thread buffers refilled every 341 envelopes; this crosses several refills per thread.
        var nonces = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 4, _ =>
        {
            for (var i = 0; i < 1500; i++)
            {
                nonces.Add(Convert.ToHexString(EnvelopeCipher.Seal(Plaintext, Aad, Key).AsSpan(EnvelopeCipher.HeaderSize - 12, 12)));
            }
        });

        Assert.Equal(6000, nonces.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void SealAndOpen_ManyThreadsSharingOneKey_EachGetsItsOwnStateBack()
    {
        // A data key hands its idle AES-GCM contexts out one operation at a time; concurrent seals and opens must not mix.
        var opened = new byte[64][];
        Parallel.For(0, opened.Length, i =>
        {
            var plaintext = BitConverter.GetBytes(i);
            for (var round = 0; round < 200; round++)
            {
                opened[i] = EnvelopeCipher.Open(EnvelopeCipher.Seal(plaintext, Aad, Key), Aad, Key);
            }
        });

        Assert.All(opened, (bytes, i) => Assert.Equal(i, BitConverter.ToInt32(bytes)));
    }

    [Fact]
    public void Open_AfterFailedOpens_TheKeyStillSealsAndOpens()
    {
        var tampered = EnvelopeCipher.Seal(Plaintext, Aad, Key);
        tampered[^1] ^= 0x01;

        for (var i = 0; i < 20; i++)
        {
            Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(tampered, Aad, Key));
            Assert.Equal(Plaintext, EnvelopeCipher.Open(EnvelopeCipher.Seal(Plaintext, Aad, Key), Aad, Key));
        }
    }

    [Fact]
    public void Open_LongGrainId_BindsEveryByteOfIt()
    {
        // Longer than what is built on the stack: the associated data then goes to the heap, and must bind the same.
        var id = "user/" + new string('a', 600);
        var envelope = EnvelopeCipher.Seal(Plaintext, EnvelopeCipher.AssociatedData("user", id, "user"), Key);

        Assert.Equal(Plaintext, EnvelopeCipher.Open(envelope, EnvelopeCipher.AssociatedData("user", id, "user"), Key));
        Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, EnvelopeCipher.AssociatedData("user", id[..^1] + "b", "user"), Key));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(20)]
    [InlineData(EnvelopeCipher.HeaderSize)]
    [InlineData(EnvelopeCipher.HeaderSize + 15)]
    public void Open_TruncatedEnvelope_Fails(int length)
    {
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, Key);

        var exception = Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope.AsSpan(0, length), Aad, Key));
        Assert.Contains(length < 4 ? "not a Bastion envelope" : "truncated", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_UnknownFormatVersion_FailsNamingTheVersion()
    {
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, Key);
        envelope[4] = 2;

        var exception = Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, Aad, Key));
        Assert.Contains("format version 2", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_PlainPayload_IsRefusedNotReadAsPlaintext()
    {
        var exception = Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(Plaintext, Aad, Key));
        Assert.Contains("not a Bastion envelope", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadHeader_TheLayoutWrittenOut()
    {
        // offset 0 "BSTE", 4 format 1, 5 the DEK id (RFC 4122 order), 21 the KEK version (big-endian), 25 nonce, 37 ciphertext.
        var id = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, new DataKey(id, 0x01020304, RandomNumberGenerator.GetBytes(EnvelopeCipher.KeySize)));

        Assert.Equal(37, EnvelopeCipher.HeaderSize);
        Assert.Equal(37 + Plaintext.Length + 16, envelope.Length);
        Assert.Equal("BSTE"u8.ToArray(), envelope[..4]);
        Assert.Equal(1, envelope[4]);
        Assert.Equal(Convert.FromHexString("00112233445566778899aabbccddeeff"), envelope[5..21]);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, envelope[21..25]);
        Assert.Equal(new EnvelopeHeader(1, id, 0x01020304), EnvelopeCipher.ReadHeader(envelope));
    }

    [Fact]
    public void Open_AnEmptyPlaintext_IsTheSmallestEnvelope()
    {
        var envelope = EnvelopeCipher.Seal([], Aad, Key);

        Assert.Equal(EnvelopeCipher.HeaderSize + 16, envelope.Length);
        Assert.Empty(EnvelopeCipher.Open(envelope, Aad, Key));
    }

    [Fact]
    public void ReadHeader_TheMagicAlone_NamesNoVersion()
    {
        var exception = Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.ReadHeader("BSTE"u8));
        Assert.Contains("format version none", exception.Message, StringComparison.Ordinal);
        Assert.Contains("not a Bastion envelope", Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.ReadHeader("BST"u8)).Message, StringComparison.Ordinal);
        Assert.Contains("truncated", Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.ReadHeader("BSTE\u0001"u8)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_UnderAnotherDataKeyId_NamesBothKeys()
    {
        var envelope = EnvelopeCipher.Seal(Plaintext, Aad, Key);
        var other = new DataKey(Guid.NewGuid(), 3, RandomNumberGenerator.GetBytes(EnvelopeCipher.KeySize));

        var exception = Assert.Throws<EnvelopeFormatException>(() => EnvelopeCipher.Open(envelope, Aad, other));
        Assert.Contains($"sealed with data key {Key.Id}, not {other.Id}", exception.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(31)]
    [InlineData(33)]
    public void Seal_AKeyOfAnotherSize_IsRefused(int size) =>
        Assert.Throws<ArgumentException>(() => EnvelopeCipher.Seal(Plaintext, Aad, new DataKey(Guid.NewGuid(), 1, new byte[size])));
}
