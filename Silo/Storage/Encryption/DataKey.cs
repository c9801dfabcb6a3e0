using System.Security.Cryptography;

namespace Bastion.Storage;

/// <summary>An unwrapped data key (DEK) with the id that envelopes name and the KEK version that wraps it.</summary>
/// <remarks>
/// The key keeps its AES-GCM contexts for its lifetime: setting a context up (cipher lookup, key schedule)
/// costs several times the encryption of a small state, and every state write and read would pay it.
/// A context is not safe for concurrent use, so each operation takes one from a small lock-free set of
/// idle contexts and puts it back after (a new one is made when all are busy), and no thread waits for
/// another: every grain that is not a user's shares the system scope's key, and one context under a lock
/// would make their state reads and writes take turns across all of a silo's cores.
/// <para>
/// <see cref="Retire"/> (the key store calls it when the key leaves its cache, or its scope is erased) zeroes the
/// key bytes and frees the contexts, which hold their own copy of the key, as soon as no operation is using them;
/// from then on every operation throws <see cref="DataKeyUnavailableException"/>, so nothing is ever sealed or
/// opened with a zeroed key. The operations count themselves in and out with one interlocked counter.
/// </para>
/// </remarks>
/// <param name="id">The DEK id, written into every envelope it seals.</param>
/// <param name="kekVersion">The key-encryption key version its stored copy is wrapped with.</param>
/// <param name="key">The 32 key bytes.</param>
public sealed class DataKey(Guid id, int kekVersion, byte[] key)
{
    private const int TagSize = 16;
    private const int Retired = 1 << 30;

    private int _users;
    private readonly AesGcm?[] _idle = new AesGcm?[Math.Min(Environment.ProcessorCount, 16)];

    /// <summary>The DEK id, written into every envelope it seals.</summary>
    public Guid Id { get; } = id;

    /// <summary>The key-encryption key version its stored copy is wrapped with.</summary>
    public int KekVersion { get; } = kekVersion;

    /// <summary>The 32 key bytes; all zero once the key is retired.</summary>
    public byte[] Key { get; } = key;

    /// <summary>Whether <see cref="Retire"/> was called: the key can no longer be used.</summary>
    public bool IsRetired => (Volatile.Read(ref _users) & Retired) != 0;

    /// <summary>A copy with its own key bytes and contexts, so that retiring one leaves the other usable.</summary>
    public DataKey Copy() => new(Id, KekVersion, (byte[])Key.Clone());

    /// <summary>
    /// Refuses every further use and zeroes the key bytes (and frees the contexts) once the operations under way are
    /// done. Idempotent.
    /// </summary>
    public void Retire()
    {
        if (Interlocked.Or(ref _users, Retired) == 0)
        {
            Zero();
        }
    }

    /// <summary>AES-GCM encryption under this key with a 16-byte tag (<see cref="AesGcm.Encrypt(ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte}, Span{byte}, ReadOnlySpan{byte})"/>).</summary>
    /// <exception cref="DataKeyUnavailableException">The key was retired.</exception>
    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> associatedData)
    {
        Enter();
        var cipher = Take();
        try
        {
            cipher.Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
        }
        finally
        {
            Return(cipher);
            Exit();
        }
    }

    /// <summary>AES-GCM decryption under this key; throws <see cref="AuthenticationTagMismatchException"/> when the tag does not verify.</summary>
    /// <exception cref="DataKeyUnavailableException">The key was retired.</exception>
    public void Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        Enter();
        var cipher = Take();
        try
        {
            cipher.Decrypt(nonce, ciphertext, tag, plaintext, associatedData);
        }
        finally
        {
            Return(cipher);
            Exit();
        }
    }

    /// <summary>Never print key material.</summary>
    public override string ToString() => $"data key {Id} (KEK version {KekVersion})";

    private void Enter()
    {
        while (true)
        {
            var users = Volatile.Read(ref _users);
            if ((users & Retired) != 0)
            {
                throw new DataKeyUnavailableException($"{this} was dropped from memory (evicted, or its scope erased); look it up again.");
            }

            if (Interlocked.CompareExchange(ref _users, users + 1, users) == users)
            {
                return;
            }
        }
    }

    // The last operation out of a retired key zeroes it; Retire does when none was in.
    private void Exit()
    {
        if (Interlocked.Decrement(ref _users) == Retired)
        {
            Zero();
        }
    }

    private void Zero()
    {
        CryptographicOperations.ZeroMemory(Key);
        for (var i = 0; i < _idle.Length; i++)
        {
            Interlocked.Exchange(ref _idle[i], null)?.Dispose();
        }
    }

    private AesGcm Take()
    {
        for (var i = 0; i < _idle.Length; i++)
        {
            if (Volatile.Read(ref _idle[i]) is not null && Interlocked.Exchange(ref _idle[i], null) is { } idle)
            {
                return idle;
            }
        }

        return new AesGcm(Key, TagSize);
    }

    private void Return(AesGcm cipher)
    {
        for (var i = 0; i < _idle.Length; i++)
        {
            if (Volatile.Read(ref _idle[i]) is null && Interlocked.CompareExchange(ref _idle[i], cipher, null) is null)
            {
                return;
            }
        }

        cipher.Dispose();
    }
}
