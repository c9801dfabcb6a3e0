using System.Diagnostics;
using System.Globalization;

namespace Bastion.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project Benchmarks -- storage [--operations N]</c>: the <see cref="StorageBenchmarks"/>
/// operations, encrypted and plaintext interleaved one by one (alternating which goes first) in one silo, so that
/// drift in the disk's fsync latency and the table's growth fall on both sides alike. BenchmarkDotNet runs one
/// benchmark's iterations after the other's, which for operations dominated by a PostgreSQL commit measures the
/// drift as much as the difference. Then the throughput of each with 16 operations in flight, in alternating rounds,
/// and cold user-grain activations with a warm and a cold data-key cache.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class StorageComparison
{
    private const int Concurrency = 16;

    public static async Task<int> RunAsync(string[] args)
    {
        var operations = Operations(args);
        var benchmarks = new StorageBenchmarks();
        await benchmarks.SetupAsync();
        try
        {
            await CompareAsync("write", benchmarks.Write_Plaintext, benchmarks.Write_Encrypted, operations / 10);
            Console.WriteLine("| operation | plaintext mean / p50 µs | encrypted mean / p50 µs | encrypted throughput / plaintext |");
            Console.WriteLine("|---|---:|---:|---:|");
            await CompareAsync("write", benchmarks.Write_Plaintext, benchmarks.Write_Encrypted, operations);
            await CompareAsync("read", benchmarks.Read_Plaintext, benchmarks.Read_Encrypted, operations);

            Console.WriteLine();
            Console.WriteLine($"| operation, {Concurrency} at a time | plaintext ops/s | encrypted ops/s | encrypted throughput / plaintext | per-round ratio, median (quartiles) | silo CPU µs per operation, plaintext / encrypted |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            await ThroughputAsync("write", benchmarks.Write_Plaintext, benchmarks.Write_Encrypted, operations * 8);
            await ThroughputAsync("read", benchmarks.Read_Plaintext, benchmarks.Read_Encrypted, operations * 40);

            // The noise floor: the same measurement with plaintext on both sides.
            await ThroughputAsync("write, plaintext against itself", benchmarks.Write_Plaintext, benchmarks.Write_Plaintext, operations * 8);
            await ThroughputAsync("read, plaintext against itself", benchmarks.Read_Plaintext, benchmarks.Read_Plaintext, operations * 40);
        }
        finally
        {
            await benchmarks.CleanupAsync();
        }

        await UserActivationComparison.RunAsync(Math.Max(200, operations / 4));
        return 0;
    }

    /// <summary>The <c>--operations N</c> argument, 2000 by default.</summary>
    internal static int Operations(string[] args)
    {
        var index = Array.IndexOf(args, "--operations");
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : 2000;
    }

    internal static async Task CompareAsync(string name, Func<Task> plaintext, Func<Task> encrypted, int operations)
    {
        var plain = new List<double>(operations);
        var sealedTimes = new List<double>(operations);
        for (var i = 0; i < operations; i++)
        {
            if (i % 2 == 0)
            {
                plain.Add(await TimeAsync(plaintext));
                sealedTimes.Add(await TimeAsync(encrypted));
            }
            else
            {
                sealedTimes.Add(await TimeAsync(encrypted));
                plain.Add(await TimeAsync(plaintext));
            }
        }

        if (operations < 1000)
        {
            return; // warm-up
        }

        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"| {name} | {plain.Average():F1} / {Median(plain):F1} | {sealedTimes.Average():F1} / {Median(sealedTimes):F1} | {plain.Average() / sealedTimes.Average():P1} (p50 {Median(plain) / Median(sealedTimes):P1}) |"));
    }

    /// <summary>
    /// Throughput with <see cref="Concurrency"/> operations in flight: <c>operations</c> of each in 40 rounds (a few hundred
    /// milliseconds each), plaintext and encrypted alternately (alternating which goes first), so that drift falls on both alike.
    /// Prints the ratio of the totals and the median and quartiles of the 40 per-round ratios.
    /// </summary>
    internal static async Task ThroughputAsync(string name, Func<Task> plaintext, Func<Task> encrypted, int operations)
    {
        const int rounds = 40;
        var perRound = Math.Max(Concurrency, operations / rounds);
        var plain = TimeSpan.Zero;
        var sealedTime = TimeSpan.Zero;
        var ratios = new List<double>(rounds);
        var plainCpu = TimeSpan.Zero;
        var sealedCpu = TimeSpan.Zero;

        // Warm-up, not counted: under full load the runtime keeps re-compiling hot methods (tiered PGO) for seconds.
        for (var round = 0; round < rounds / 4; round++)
        {
            await RoundAsync(plaintext, perRound);
            await RoundAsync(encrypted, perRound);
        }

        for (var round = 0; round < rounds; round++)
        {
            TimeSpan plainRound, sealedRound;
            TimeSpan plainCpuRound, sealedCpuRound;
            if (round % 2 == 0)
            {
                (plainRound, plainCpuRound) = await RoundAsync(plaintext, perRound);
                (sealedRound, sealedCpuRound) = await RoundAsync(encrypted, perRound);
            }
            else
            {
                (sealedRound, sealedCpuRound) = await RoundAsync(encrypted, perRound);
                (plainRound, plainCpuRound) = await RoundAsync(plaintext, perRound);
            }

            plainCpu += plainCpuRound;
            sealedCpu += sealedCpuRound;
            plain += plainRound;
            sealedTime += sealedRound;
            ratios.Add(plainRound / sealedRound);
        }

        var plainRate = perRound * rounds / plain.TotalSeconds;
        var sealedRate = perRound * rounds / sealedTime.TotalSeconds;
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"| {name} | {plainRate:F0} | {sealedRate:F0} | {sealedRate / plainRate:P1} | {Median(ratios):P1} ({Quantile(ratios, 0.25):P1}–{Quantile(ratios, 0.75):P1}) | {plainCpu.TotalMicroseconds / (perRound * rounds):F1} / {sealedCpu.TotalMicroseconds / (perRound * rounds):F1} |"));
    }

    private static async Task<(TimeSpan Elapsed, TimeSpan ProcessorTime)> RoundAsync(Func<Task> operation, int operations)
    {
        var remaining = operations;
        using var process = Process.GetCurrentProcess();
        var processorTime = process.TotalProcessorTime;
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
        {
            while (Interlocked.Decrement(ref remaining) >= 0)
            {
                await operation();
            }
        }));
        var elapsed = Stopwatch.GetElapsedTime(started);
        process.Refresh();
        return (elapsed, process.TotalProcessorTime - processorTime);
    }

    private static async Task<double> TimeAsync(Func<Task> operation)
    {
        var started = Stopwatch.GetTimestamp();
        await operation();
        return Stopwatch.GetElapsedTime(started).TotalMicroseconds;
    }

    private static double Median(List<double> values) => Quantile(values, 0.5);

    private static double Quantile(List<double> values, double quantile)
    {
        var sorted = values.Order().ToArray();
        return sorted[(int)(quantile * (sorted.Length - 1))];
    }
}
