using System.Diagnostics;
using System.Globalization;
using Bastion.Storage;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Benchmarks;

/// <summary>
/// Cold activations of user grains (state read, envelope opened) on one silo, with the user's data key in the cache
/// (warm) and not (cold: fetched from the key store and unwrapped under the KEK), interleaved one by one.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class UserActivationComparison
{
    public static async Task RunAsync(int activations)
    {
        await using var silo = await BenchmarkSilo.StartAsync("activation", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" });
        var grains = silo.Services.GetRequiredService<IGrainFactory>();
        var dataKeys = silo.Services.GetRequiredService<DataKeyStore>();
        var run = Guid.NewGuid().ToString("N")[..8];
        var users = Enumerable.Range(0, activations).Select(i => $"bench-{run}-{i}").ToArray();
        foreach (var batch in users.Chunk(32))
        {
            await Task.WhenAll(batch.Select(user => grains.GetGrain<IUserGrain>(user).CreateAsync(["user"])));
        }

        // Every user grain goes idle and is deactivated, so the next call activates it and reads its state.
        await grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);

        var warm = new List<double>();
        var cold = new List<double>();
        for (var i = 0; i < users.Length; i++)
        {
            var scope = DataKeyScope.For(DataKeyScope.UserGrainType, users[i]);
            var coldKey = i % 2 == 1;
            if (coldKey)
            {
                dataKeys.ForgetCachedKeys();
            }
            else
            {
                await dataKeys.GetCurrentAsync(scope, CancellationToken.None);
            }

            var started = Stopwatch.GetTimestamp();
            _ = await grains.GetGrain<IUserGrain>(users[i]).GetProfileAsync() ?? throw new InvalidOperationException("The user's state did not read back.");
            (coldKey ? cold : warm).Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }

        Console.WriteLine();
        Console.WriteLine("| user grain activation (state read + envelope opened) | mean µs | p50 µs | p95 µs |");
        Console.WriteLine("|---|---:|---:|---:|");
        Row("data key cached (warm)", warm);
        Row("data key fetched and unwrapped (cold)", cold);
    }

    private static void Row(string label, List<double> values)
    {
        var sorted = values.Order().ToArray();
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"| {label} | {values.Average():F1} | {sorted[sorted.Length / 2]:F1} | {sorted[(int)(sorted.Length * 0.95)]:F1} |"));
    }
}
