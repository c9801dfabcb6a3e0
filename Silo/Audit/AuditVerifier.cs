using Bastion.Security;
using Npgsql;

namespace Bastion.Audit;

/// <summary>
/// Checks the audit trail: every record follows the one before it (sequence and previous hash), every record's hash
/// matches its content, every seal's MAC holds under its key version and names the hash the chain has at that record,
/// and no seal covers a record that is gone. Reports the first broken record.
/// </summary>
public static class AuditVerifier
{
    /// <summary>Verifies the whole trail (what retention left of it).</summary>
    public static Task<AuditVerification> VerifyAsync(NpgsqlConnection connection, IKeyProvider keys, CancellationToken cancellationToken) =>
        VerifyAsync(connection, keys, progress: null, cancellationToken);

    /// <summary>Verifies from where <paramref name="progress"/> stopped (the whole trail when null), and moves it on when all holds.</summary>
    public static async Task<AuditVerification> VerifyAsync(NpgsqlConnection connection, IKeyProvider keys, Progress? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(keys);
        var incremental = progress is { Seq: > 0 };
        var start = incremental ? progress!.Seq : 0;
        var seals = await ReadSealsAsync(connection, start, cancellationToken);
        var sealsBySeq = seals.ToDictionary(seal => seal.Seq);
        var sealedHashes = new Dictionary<long, byte[]>();
        var broken = new Broken();

        long records = 0;
        long? first = null;
        var last = start;
        var expectedPrevious = incremental ? progress!.Hash : null;
        await using (var command = new NpgsqlCommand(
            "SELECT seq, recorded_at, payload, prev_hash, hash FROM bastion_audit WHERE seq >= @start ORDER BY seq", connection))
        {
            command.Parameters.AddWithValue("start", start);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var seq = reader.GetInt64(0);
                var hash = reader.GetFieldValue<byte[]>(4);
                if (incremental && seq == start)
                {
                    // The last record checked before: it must still be exactly what it was.
                    if (!hash.AsSpan().SequenceEqual(progress!.Hash))
                    {
                        broken.At(seq, $"record {seq} was changed since it was last verified");
                    }

                    continue;
                }

                if (first is null && !incremental)
                {
                    first = seq;
                    expectedPrevious = seq == 1 ? AuditChain.Genesis.ToArray()
                        : sealsBySeq.GetValueOrDefault(seq - 1)?.Hash;
                    if (expectedPrevious is null)
                    {
                        broken.At(seq, $"records before {seq} are missing and no seal anchors record {seq}");
                        break;
                    }
                }
                else if (seq != last + 1)
                {
                    broken.At(last + 1, $"record {last + 1} is missing (the next record is {seq})");
                    break;
                }

                first ??= seq;
                var previous = reader.GetFieldValue<byte[]>(3);
                if (!previous.AsSpan().SequenceEqual(expectedPrevious))
                {
                    broken.At(seq, $"record {seq} does not follow record {seq - 1} (records were removed, inserted or reordered)");
                    break;
                }

                var time = reader.GetFieldValue<DateTimeOffset>(1);
                if (!AuditChain.Hash(previous, seq, time, reader.GetFieldValue<byte[]>(2)).AsSpan().SequenceEqual(hash))
                {
                    broken.At(seq, $"record {seq} was changed (its hash does not match its content)");
                    break;
                }

                if (sealsBySeq.ContainsKey(seq))
                {
                    sealedHashes[seq] = hash;
                }

                records++;
                last = seq;
                expectedPrevious = hash;
            }
        }

        if (incremental)
        {
            sealedHashes[start] = progress!.Hash;
        }

        DateTimeOffset? lastSealAt = null;
        foreach (var seal in seals)
        {
            lastSealAt = seal.SealedAt;
            if (keys.FindAuditSealKey(seal.KeyVersion) is not { } key)
            {
                broken.At(seal.Seq, $"the seal at record {seal.Seq} names seal key version {seal.KeyVersion}, which the key provider does not hold");
            }
            else if (!AuditChain.SealHolds(key.Key, seal.Seq, seal.Hash, seal.SealedAt, seal.Mac))
            {
                broken.At(seal.Seq, $"the seal at record {seal.Seq} was forged or changed (its MAC does not hold)");
            }
            else if (seal.Seq > last && broken.Seq is null)
            {
                broken.At(last + 1, $"records {last + 1} to {seal.Seq} were removed (the seal at record {seal.Seq} covers them)");
            }
            else if (sealedHashes.TryGetValue(seal.Seq, out var hash) && !hash.AsSpan().SequenceEqual(seal.Hash))
            {
                broken.At(seal.Seq, $"the chain up to record {seal.Seq} differs from what was sealed (rewritten after the previous seal)");
            }
        }

        if (broken.Seq is null && progress is not null && last > start)
        {
            progress.Seq = last;
            progress.Hash = expectedPrevious!;
        }

        return new AuditVerification(
            broken.Seq is null, records, first, last == 0 ? null : last, broken.Seq is null ? expectedPrevious : null, seals.Count, lastSealAt, broken.Seq, broken.Problem);
    }

    private static async Task<List<Seal>> ReadSealsAsync(NpgsqlConnection connection, long start, CancellationToken cancellationToken)
    {
        var seals = new List<Seal>();
        await using var command = new NpgsqlCommand("SELECT seq, hash, sealed_at, key_version, mac FROM bastion_audit_seals WHERE seq >= @start ORDER BY seq", connection);
        command.Parameters.AddWithValue("start", start);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            seals.Add(new Seal(reader.GetInt64(0), reader.GetFieldValue<byte[]>(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetInt32(3), reader.GetFieldValue<byte[]>(4)));
        }

        return seals;
    }

    /// <summary>How far an incremental check has got: the last verified record and its hash.</summary>
    public sealed class Progress
    {
        public long Seq { get; internal set; }

        public byte[] Hash { get; internal set; } = [];
    }

    private sealed record Seal(long Seq, byte[] Hash, DateTimeOffset SealedAt, int KeyVersion, byte[] Mac);

    // Keeps the lowest-numbered problem: the first broken record.
    private sealed class Broken
    {
        public long? Seq { get; private set; }

        public string? Problem { get; private set; }

        public void At(long seq, string problem)
        {
            if (Seq is null || seq < Seq)
            {
                (Seq, Problem) = (seq, problem);
            }
        }
    }
}

/// <summary>The result of <see cref="AuditVerifier"/>.</summary>
/// <param name="Intact">Whether everything checked holds.</param>
/// <param name="Records">How many records were checked.</param>
/// <param name="FirstSeq">The first record checked.</param>
/// <param name="LastSeq">The last record that verified.</param>
/// <param name="HeadHash">The hash of the last record (record it elsewhere to detect a truncated tail later).</param>
/// <param name="Seals">How many seals were checked.</param>
/// <param name="LastSealAt">When the newest seal checked was written.</param>
/// <param name="BrokenAt">The first broken record, when not intact.</param>
/// <param name="Problem">What is wrong there.</param>
public sealed record AuditVerification(
    bool Intact, long Records, long? FirstSeq, long? LastSeq, byte[]? HeadHash, int Seals, DateTimeOffset? LastSealAt, long? BrokenAt, string? Problem);
