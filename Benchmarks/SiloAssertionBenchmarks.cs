using BenchmarkDotNet.Attributes;
using Bastion.Cluster;

namespace Bastion.Benchmarks;

/// <summary>The silo assertion every silo attaches to its calls (an HMAC-SHA256), made by the caller and checked by the callee.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[MemoryDiagnoser]
public class SiloAssertionBenchmarks : IDisposable
{
    private static readonly GrainId Target = GrainId.Create("bastion.user", "u_0123456789abcdef0123456789abcdef");
    private static readonly GrainInterfaceType Interface = GrainInterfaceType.Create("Bastion.Users.IUserGrain");

    private BenchmarkKeyring? _keyring;
    private SiloAssertion? _assertions;
    private string _assertion = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        _keyring = new BenchmarkKeyring();
        _assertions = new SiloAssertion(_keyring.Keys, TimeProvider.System);
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
        GC.SuppressFinalize(this);
    }
}
