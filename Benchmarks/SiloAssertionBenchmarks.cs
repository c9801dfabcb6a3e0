using BenchmarkDotNet.Attributes;
using Bastion.Cluster;
using Bastion.Security;

namespace Bastion.Benchmarks;

/// <summary>The silo assertion every silo attaches to its calls (an HMAC-SHA256), made by the caller and checked by the callee.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[MemoryDiagnoser]
public class SiloAssertionBenchmarks : IDisposable
{
    private static readonly GrainId Target = GrainId.Create("bastion.user", "u_0123456789abcdef0123456789abcdef");
    private static readonly GrainInterfaceType Interface = GrainInterfaceType.Create("Bastion.Users.IUserGrain");

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-bench-" + Guid.NewGuid().ToString("N")[..8]);
    private DevelopmentKeyring? _keyring;
    private SiloAssertion? _assertions;
    private string _assertion = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        _keyring = DevelopmentKeyring.LoadOrCreate(Path.Combine(_directory, "keyring.json"));
        _assertions = new SiloAssertion(_keyring, TimeProvider.System);
        _assertion = _assertions.Create(Target, Interface, "SubmitAsync");
    }

    [Benchmark]
    public string Create() => _assertions!.Create(Target, Interface, "SubmitAsync");

    [Benchmark]
    public bool Verify() => _assertions!.Verify(_assertion, Target, Interface, "SubmitAsync");

    [GlobalCleanup]
    public void Dispose()
    {
        _keyring?.Dispose();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }

        GC.SuppressFinalize(this);
    }
}
