using BenchmarkDotNet.Running;

namespace Bastion.Benchmarks;

/// <summary><c>dotnet run -c Release --project Benchmarks -- --filter '*'</c></summary>
internal static class BenchmarkProgram
{
    private static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
}
