using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bastion.Storage;

namespace Bastion.Audit;

/// <summary>
/// The audit trail's cryptography, pure: record hashes, seal MACs, payload encryption and its JSON (docs/audit.md).
/// </summary>
/// <remarks>
/// <code>
/// hash(n) = SHA-256( hash(n-1) ‖ n (int64 BE) ‖ time (µs since the Unix epoch, int64 BE) ‖ payload )      hash(0) = 32 zero bytes
/// seal    = HMAC-SHA-256( seal key, "bastion.audit.seal.v1" ‖ n (int64 BE) ‖ hash(n) ‖ sealed-at (µs, int64 BE) )
/// payload = envelope (EnvelopeCipher) of the record's JSON under the "audit" data key, associated data "bastion.audit" ‖ n
/// </code>
/// Times are whole microseconds, PostgreSQL's precision, so that what is hashed is exactly what is stored.
/// </remarks>
public static class AuditChain
{
    /// <summary>The data-key scope audit payloads are encrypted under.</summary>
    public const string DataKeyScope = "audit";

    /// <summary>The hash before the first record.</summary>
    public static ReadOnlySpan<byte> Genesis => new byte[32];

    private static ReadOnlySpan<byte> SealLabel => "bastion.audit.seal.v1"u8;

    private static ReadOnlySpan<byte> PayloadLabel => "bastion.audit"u8;

    /// <summary><paramref name="time"/> cut to whole microseconds (what PostgreSQL stores).</summary>
    public static DateTimeOffset ToStoredPrecision(DateTimeOffset time) =>
        new(time.UtcTicks - (time.UtcTicks % 10), TimeSpan.Zero);

    /// <summary>The hash of record <paramref name="seq"/>.</summary>
    public static byte[] Hash(ReadOnlySpan<byte> previousHash, long seq, DateTimeOffset time, ReadOnlySpan<byte> payload)
    {
        Span<byte> numbers = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(numbers, seq);
        BinaryPrimitives.WriteInt64BigEndian(numbers[8..], Microseconds(time));
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(previousHash);
        hash.AppendData(numbers);
        hash.AppendData(payload);
        return hash.GetHashAndReset();
    }

    /// <summary>The MAC of a seal over record <paramref name="seq"/> whose hash is <paramref name="hash"/>.</summary>
    public static byte[] SealMac(ReadOnlySpan<byte> key, long seq, ReadOnlySpan<byte> hash, DateTimeOffset sealedAt)
    {
        Span<byte> numbers = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(numbers, seq);
        BinaryPrimitives.WriteInt64BigEndian(numbers[8..], Microseconds(sealedAt));
        using var mac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        mac.AppendData(SealLabel);
        mac.AppendData(numbers[..8]);
        mac.AppendData(hash);
        mac.AppendData(numbers[8..]);
        return mac.GetHashAndReset();
    }

    /// <summary>Whether <paramref name="mac"/> is the seal MAC (compared in constant time).</summary>
    public static bool SealHolds(ReadOnlySpan<byte> key, long seq, ReadOnlySpan<byte> hash, DateTimeOffset sealedAt, ReadOnlySpan<byte> mac) =>
        CryptographicOperations.FixedTimeEquals(SealMac(key, seq, hash, sealedAt), mac);

    /// <summary>Encrypts <paramref name="record"/> as the payload of record <paramref name="seq"/>.</summary>
    public static byte[] Seal(AuditRecord record, long seq, DataKey dataKey) =>
        EnvelopeCipher.Seal(JsonSerializer.SerializeToUtf8Bytes(Entry.Of(record), AuditJsonContext.Default.Entry), AssociatedData(seq), dataKey);

    /// <summary>The data key id a payload was sealed under (from its envelope header).</summary>
    public static Guid DataKeyOf(ReadOnlySpan<byte> payload) => EnvelopeCipher.ReadHeader(payload).DataKeyId;

    /// <summary>Decrypts the payload of record <paramref name="seq"/>.</summary>
    /// <exception cref="AuthenticationTagMismatchException">The payload is not this record's, or was changed.</exception>
    public static AuditRecord Open(ReadOnlySpan<byte> payload, long seq, DataKey dataKey) =>
        EnvelopeCipher.Open(payload, AssociatedData(seq), dataKey, json => JsonSerializer.Deserialize(json, AuditJsonContext.Default.Entry)!.ToRecord());

    private static byte[] AssociatedData(long seq)
    {
        var data = new byte[PayloadLabel.Length + 8];
        PayloadLabel.CopyTo(data);
        BinaryPrimitives.WriteInt64BigEndian(data.AsSpan(PayloadLabel.Length), seq);
        return data;
    }

    private static long Microseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    /// <summary>The JSON inside a payload (and, with its sequence number and hash, each line of <c>audit export</c>).</summary>
    internal sealed record Entry(
        [property: JsonPropertyName("time")] DateTimeOffset Time,
        [property: JsonPropertyName("action")] string Action,
        [property: JsonPropertyName("actor")] string? Actor,
        [property: JsonPropertyName("target")] string? Target,
        [property: JsonPropertyName("outcome")] string Outcome,
        [property: JsonPropertyName("detail")] IReadOnlyDictionary<string, string>? Detail)
    {
        public static Entry Of(AuditRecord record) =>
            new(ToStoredPrecision(record.Time), record.Action, record.Actor, record.Target, record.Outcome, record.Detail is { Count: > 0 } detail ? detail : null);

        public AuditRecord ToRecord() => new(Time, Action, Actor, Target, Outcome, Detail);
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AuditChain.Entry))]
[JsonSerializable(typeof(ExportedRecord))]
internal sealed partial class AuditJsonContext : JsonSerializerContext;
