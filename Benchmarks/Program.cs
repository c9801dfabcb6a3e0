using BenchmarkDotNet.Running;

namespace Bastion.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project Benchmarks -- --filter '*'</c> runs the BenchmarkDotNet benchmarks;
/// <c>dotnet run -c Release --project Benchmarks -- inference [tiny|small|all]</c> runs the inference load tool;
/// <c>dotnet run -c Release --project Benchmarks -- storage</c> compares encrypted and plaintext grain storage interleaved;
/// <c>dotnet run -c Release --project Benchmarks -- audit</c> measures what the audit trail adds to an admin change;
/// <c>dotnet run -c Release --project Benchmarks -- guard</c> sets the output guard's cost per token beside the decode time.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class BenchmarkProgram
{
    private static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "inference")
        {
            return await InferenceLoad.RunAsync(args[1..]);
        }

        if (args.Length > 0 && args[0] == "audit")
        {
            return await AuditComparison.RunAsync(args[1..]);
        }

        if (args.Length > 0 && args[0] == "guard")
        {
            return await GuardComparison.RunAsync(args[1..]);
        }

        if (args.Length > 0 && args[0] == "storage")
        {
            return await StorageComparison.RunAsync(args[1..]);
        }

        BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
        return 0;
    }
}
