using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Bastion.Storage;

/// <summary>
/// Seals grain state into a versioned AES-256-GCM envelope and opens it again. Pure: no Orleans,
/// no storage, no key lookup; the caller supplies the data key and the associated data.
/// </summary>
/// <remarks>
/// <para>Layout (format version 1), all integers big-endian:</para>
/// <code>
/// offset  size  field
///      0     4  magic "BSTE"
///      4     1  format version (1)
///      5    16  DEK id (RFC 4122 byte order)
///     21     4  KEK version
///     25    12  nonce
///     37     n  ciphertext
///   37+n    16  GCM tag
/// </code>
/// <para>The GCM associated data is the 37 header bytes followed by the caller's associated data
/// (grain type, grain id, state name), so neither the header nor the row's identity can be changed
/// or swapped without the tag failing.</para>
/// <para>Nonces are 96 random bits. With random nonces the chance that two encryptions under one key
/// collide after q messages is about q²/2⁹⁷; NIST SP 800-38D caps random-nonce GCM at 2³² messages
/// per key, which keeps that below 2⁻³². A DEK seals one user's (or the system scope's) state
/// writes, orders of magnitude below 2³², and rotation replaces the DEK long before. Random nonces
/// need no counter shared between silos, which a cluster writing the same grain after a failover
/// could not keep consistent.</para>
/// </remarks>
public static class EnvelopeCipher
{
    /// <summary>The current (and only) format version.</summary>
    public const byte FormatVersion = 1;

    /// <summary>Bytes of a data key: AES-256.</summary>
    public const int KeySize = 32;

    /// <summary>Bytes before the ciphertext.</summary>
    public const int HeaderSize = 4 + 1 + 16 + 4 + NonceSize;

    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int NonceOffset = HeaderSize - NonceSize;
    private const int StackLimit = 256;

    [ThreadStatic]
    private static byte[]? t_nonces;

    [ThreadStatic]
    private static int t_noncesUsed;

    private static ReadOnlySpan<byte> Magic => "BSTE"u8;

    /// <summary>Encrypts <paramref name="plaintext"/> under <paramref name="dataKey"/>, bound to <paramref name="associatedData"/>.</summary>
    public static byte[] Seal(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, DataKey dataKey)
    {
        if (dataKey.Key.Length != KeySize)
        {
            throw new ArgumentException($"A data key is {KeySize} bytes.", nameof(dataKey));
        }

        var envelope = new byte[HeaderSize + plaintext.Length + TagSize];
        var header = envelope.AsSpan(0, HeaderSize);
        Magic.CopyTo(header);
        header[4] = FormatVersion;
        dataKey.Id.TryWriteBytes(header.Slice(5, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteInt32BigEndian(header.Slice(21, 4), dataKey.KekVersion);
        NextNonce(header.Slice(NonceOffset, NonceSize));

        var headerAndAssociated = HeaderAndAssociatedData(header, associatedData, stackalloc byte[StackLimit]);
        dataKey.Encrypt(
            header.Slice(NonceOffset, NonceSize),
            plaintext,
            envelope.AsSpan(HeaderSize, plaintext.Length),
            envelope.AsSpan(HeaderSize + plaintext.Length, TagSize),
            headerAndAssociated);
        return envelope;
    }

    /// <summary>Reads the header of <paramref name="envelope"/> without decrypting it.</summary>
    /// <exception cref="EnvelopeFormatException">Not an envelope, truncated, or an unknown format version.</exception>
    public static EnvelopeHeader ReadHeader(ReadOnlySpan<byte> envelope)
    {
        if (envelope.Length < Magic.Length || !envelope[..Magic.Length].SequenceEqual(Magic))
        {
            throw new EnvelopeFormatException(
                "The stored payload is not a Bastion envelope (no BSTE magic): it was written unencrypted or by something else, and is refused rather than read as plaintext.");
        }

        if (envelope.Length < Magic.Length + 1 || envelope[4] != FormatVersion)
        {
            throw new EnvelopeFormatException(
                $"The stored envelope has format version {(envelope.Length > 4 ? envelope[4] : "none")}; this build reads version {FormatVersion} only.");
        }

        if (envelope.Length < HeaderSize + TagSize)
        {
            throw new EnvelopeFormatException($"The stored envelope is truncated ({envelope.Length} bytes; at least {HeaderSize + TagSize} needed).");
        }

        return new EnvelopeHeader(
            envelope[4],
            new Guid(envelope.Slice(5, 16), bigEndian: true),
            BinaryPrimitives.ReadInt32BigEndian(envelope.Slice(21, 4)));
    }

    /// <summary>Decrypts <paramref name="envelope"/>; never returns anything it could not authenticate.</summary>
    /// <exception cref="EnvelopeFormatException">Not an envelope, an unknown version, truncated, a wrong key, tampered bytes or other associated data.</exception>
    public static byte[] Open(ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData, DataKey dataKey) =>
        Open(envelope, associatedData, dataKey, static plaintext => plaintext.ToArray());

    /// <summary>
    /// Decrypts <paramref name="envelope"/> into a pooled buffer and hands the plaintext to <paramref name="read"/>. The buffer
    /// is zeroed before it goes back, so the plaintext outlives the call only as what <paramref name="read"/> makes of it;
    /// nothing is handed over that could not be authenticated.
    /// </summary>
    /// <exception cref="EnvelopeFormatException">Not an envelope, an unknown version, truncated, a wrong key, tampered bytes or other associated data.</exception>
    public static T Open<T>(ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData, DataKey dataKey, Func<ReadOnlySpan<byte>, T> read)
    {
        var sealedWith = ReadHeader(envelope).DataKeyId;
        if (sealedWith != dataKey.Id)
        {
            throw new EnvelopeFormatException($"The stored envelope was sealed with data key {sealedWith}, not {dataKey.Id}.");
        }

        var header = envelope[..HeaderSize];
        var ciphertext = envelope[HeaderSize..^TagSize];
        var headerAndAssociated = HeaderAndAssociatedData(header, associatedData, stackalloc byte[StackLimit]);
        var buffer = ArrayPool<byte>.Shared.Rent(ciphertext.Length);
        var plaintext = buffer.AsSpan(0, ciphertext.Length);
        try
        {
            dataKey.Decrypt(header.Slice(NonceOffset, NonceSize), ciphertext, envelope[^TagSize..], plaintext, headerAndAssociated);
            return read(plaintext);
        }
        catch (AuthenticationTagMismatchException exception)
        {
            throw new EnvelopeFormatException(
                "The stored envelope failed authentication: a wrong data key, modified bytes, or a payload that belongs to another grain or state.", exception);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The associated data of one stored state: grain type, grain id and state name, each
    /// length-prefixed so that no two different triples encode alike.
    /// </summary>
    public static byte[] AssociatedData(string grainType, string grainId, string stateName)
    {
        var utf8 = System.Text.Encoding.UTF8;
        return AssociatedData(utf8.GetBytes(grainType), utf8.GetBytes(grainId), stateName);
    }

    /// <inheritdoc cref="AssociatedData(string, string, string)"/>
    /// <remarks>From the UTF-8 bytes an Orleans grain id holds, so that no string is made on the path of every state read and write.</remarks>
    public static byte[] AssociatedData(ReadOnlySpan<byte> grainType, ReadOnlySpan<byte> grainId, string stateName)
    {
        var utf8 = System.Text.Encoding.UTF8;
        var result = new byte[12 + grainType.Length + grainId.Length + utf8.GetByteCount(stateName)];
        var rest = result.AsSpan();
        rest = Append(rest, grainType);
        rest = Append(rest, grainId);
        var written = utf8.GetBytes(stateName, rest[4..]);
        BinaryPrimitives.WriteInt32BigEndian(rest, written);
        return result;

        static Span<byte> Append(Span<byte> destination, ReadOnlySpan<byte> part)
        {
            BinaryPrimitives.WriteInt32BigEndian(destination, part.Length);
            part.CopyTo(destination[4..]);
            return destination[(4 + part.Length)..];
        }
    }

    // Nonces are taken from a per-thread buffer of CSPRNG output, refilled 4 KiB at a time: one call into the
    // random number generator per 341 envelopes rather than one per envelope, on the path of every state write.
    // They are exactly as random and as unique as before; a nonce is public, only its uniqueness matters.
    private static void NextNonce(Span<byte> nonce)
    {
        var pool = t_nonces ??= new byte[NonceSize * 341];
        if (t_noncesUsed == 0 || t_noncesUsed == pool.Length)
        {
            RandomNumberGenerator.Fill(pool);
            t_noncesUsed = 0;
        }

        pool.AsSpan(t_noncesUsed, NonceSize).CopyTo(nonce);
        t_noncesUsed += NonceSize;
    }

    // The GCM associated data: the header followed by the caller's; on the stack when it fits (grain ids are short).
    private static ReadOnlySpan<byte> HeaderAndAssociatedData(ReadOnlySpan<byte> header, ReadOnlySpan<byte> associatedData, Span<byte> stack)
    {
        var length = header.Length + associatedData.Length;
        var result = length <= stack.Length ? stack[..length] : new byte[length];
        header.CopyTo(result);
        associatedData.CopyTo(result[header.Length..]);
        return result;
    }
}
