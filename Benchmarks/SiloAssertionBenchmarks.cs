using BenchmarkDotNet.Attributes;
using Bastion.Cluster;

namespace Bastion.Benchmarks;

/// <summary>The silo assertion every silo attaches to its calls (an HMAC-SHA256), made by the caller and checked by the callee.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[MemoryDiagnoser]
public class SiloAssertionBenchmarks : IDisposable
{
    private static readonly SiloCall Call = new(
        GrainId.Create("sys.client", "hosted-127.0.0.1:11111@1"),
        GrainId.Create("bastion.user", "u_0123456789abcdef0123456789abcdef"),
        GrainInterfaceType.Create("Bastion.Users.IUserGrain"),
        "SubmitAsync",
        System.Security.Cryptography.SHA256.HashData("arguments"u8));

    private BenchmarkKeyring? _keyring;
    private SiloAssertion? _assertions;
    private string _assertion = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        _keyring = new BenchmarkKeyring();
        _assertions = new SiloAssertion(_keyring.Keys, TimeProvider.System);
        _assertion = _assertions.Create(Call);
    }

    [Benchmark]
    public string Create() => _assertions!.Create(Call);

    [Benchmark]
    public bool Verify() => _assertions!.Verify(_assertion, Call);

    [GlobalCleanup]
    public void Dispose()
    {
        _keyring?.Dispose();
        GC.SuppressFinalize(this);
    }
}
