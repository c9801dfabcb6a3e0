using System.Security.Cryptography;

namespace Bastion.Storage;

/// <summary>An unwrapped data key (DEK) with the id that envelopes name and the KEK version that wraps it.</summary>
/// <remarks>
/// The key keeps one AES-GCM context for its lifetime: setting a context up (cipher lookup, key schedule)
/// costs several times the encryption of a small state, and every state write and read would pay it.
/// A context is not safe for concurrent use, so operations on one key take turns; each is a few microseconds.
/// </remarks>
/// <param name="id">The DEK id, written into every envelope it seals.</param>
/// <param name="kekVersion">The key-encryption key version its stored copy is wrapped with.</param>
/// <param name="key">The 32 key bytes.</param>
public sealed class DataKey(Guid id, int kekVersion, byte[] key)
{
    private readonly Lock _gate = new();
    private AesGcm? _cipher;

    /// <summary>The DEK id, written into every envelope it seals.</summary>
    public Guid Id { get; } = id;

    /// <summary>The key-encryption key version its stored copy is wrapped with.</summary>
    public int KekVersion { get; } = kekVersion;

    /// <summary>The 32 key bytes.</summary>
    public byte[] Key { get; } = key;

    /// <summary>AES-GCM encryption under this key (<see cref="AesGcm.Encrypt(ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte}, Span{byte}, ReadOnlySpan{byte})"/>).</summary>
    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> associatedData)
    {
        lock (_gate)
        {
            Cipher(tag.Length).Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
        }
    }

    /// <summary>AES-GCM decryption under this key; throws <see cref="AuthenticationTagMismatchException"/> when the tag does not verify.</summary>
    public void Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        lock (_gate)
        {
            Cipher(tag.Length).Decrypt(nonce, ciphertext, tag, plaintext, associatedData);
        }
    }

    /// <summary>Never print key material.</summary>
    public override string ToString() => $"data key {Id} (KEK version {KekVersion})";

    private AesGcm Cipher(int tagSize) => _cipher ??= new AesGcm(Key, tagSize);
}
