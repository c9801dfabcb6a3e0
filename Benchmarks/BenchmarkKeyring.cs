using Bastion.Security;

namespace Bastion.Benchmarks;

/// <summary>A development keyring in a temporary directory of its own, deleted with it.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class BenchmarkKeyring : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-bench-" + Guid.NewGuid().ToString("N")[..8]);

    public BenchmarkKeyring() => Keys = DevelopmentKeyring.LoadOrCreate(Path.Combine(_directory, "keyring.json"));

    public DevelopmentKeyring Keys { get; }

    public void Dispose()
    {
        Keys.Dispose();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
