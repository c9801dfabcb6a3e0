using System.Diagnostics;
using System.Globalization;
using Bastion.Audit;
using Bastion.Hosting;
using Bastion.Security;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Bastion.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project Benchmarks -- audit [--operations N]</c>: what the audit trail adds to an admin change
/// (an encrypted state write, then the same write followed by its durable audit record, interleaved one by one, then with
/// 16 in flight, where records share batches), how fast queued inference records are written, and how fast
/// <c>audit verify</c> checks the chain.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class AuditComparison
{
    public static async Task<int> RunAsync(string[] args)
    {
        var operations = StorageComparison.Operations(args);
        var benchmarks = new StorageBenchmarks();
        await benchmarks.SetupAsync();
        try
        {
            await StorageComparison.CompareAsync("warm-up", benchmarks.Write_Encrypted, benchmarks.Write_EncryptedAndAudited, operations / 10);
            Console.WriteLine("| operation | state write mean / p50 µs | state write + audit record mean / p50 µs | throughput with audit / without |");
            Console.WriteLine("|---|---:|---:|---:|");
            await StorageComparison.CompareAsync("admin change, one at a time", benchmarks.Write_Encrypted, benchmarks.Write_EncryptedAndAudited, operations);
            Console.WriteLine();
            Console.WriteLine("| operation, 16 at a time | without ops/s | with audit ops/s | with / without | per-round ratio, median (quartiles) | silo CPU µs per operation, without / with |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            await StorageComparison.ThroughputAsync("admin change", benchmarks.Write_Encrypted, benchmarks.Write_EncryptedAndAudited, operations * 8);

            var trail = benchmarks.Services.GetRequiredService<IAuditTrail>();
            var queued = operations * 10;
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < queued; i++)
            {
                await trail.EnqueueAsync(new AuditRecord(DateTimeOffset.UtcNow, "inference", "benchmark-user", null, "stop",
                    new Dictionary<string, string> { ["model"] = "bench", ["prompt_tokens"] = "12", ["completion_tokens"] = "64" }));
            }

            // A durable record behind the queued ones completes once they are all written.
            await trail.RecordAsync(new AuditRecord(DateTimeOffset.UtcNow, "benchmark.end", null, null, "ok"));
            var written = Stopwatch.GetElapsedTime(started);
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"queued inference records: {queued} written in {written.TotalSeconds:F2} s ({queued / written.TotalSeconds:F0} records/s)"));

            await using var connection = new NpgsqlConnection(benchmarks.Services.GetRequiredService<BastionDatabase>().RuntimeConnectionString);
            await connection.OpenAsync();
            started = Stopwatch.GetTimestamp();
            var result = await AuditVerifier.VerifyAsync(connection, benchmarks.Services.GetRequiredService<IKeyProvider>(), CancellationToken.None);
            var verified = Stopwatch.GetElapsedTime(started);
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"audit verify: {result.Records} records, {result.Seals} seals, intact {result.Intact}, in {verified.TotalSeconds:F2} s ({result.Records / verified.TotalSeconds:F0} records/s)"));
        }
        finally
        {
            await benchmarks.CleanupAsync();
        }

        return 0;
    }
}
