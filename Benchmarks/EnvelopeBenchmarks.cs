using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Bastion.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Storage;

namespace Bastion.Benchmarks;

/// <summary>
/// The CPU the envelope adds to one state read and write, without PostgreSQL: Orleans' binary (de)serialization of the
/// <see cref="BenchmarkState"/> as the plaintext ADO.NET storage does it, against the same plus the envelope.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkDotNet.Configs.BenchmarkLogicalGroupRule.ByCategory)]
public class EnvelopeBenchmarks
{
    private static readonly GrainId GrainId = GrainId.Create("bench.storage", "0123456789abcdef-42");
    private ServiceProvider? _services;
    private Serializer? _serializer;
    private OrleansGrainStorageSerializer? _plain;
    private BenchmarkState? _state;
    private BinaryData? _plainPayload;
    private byte[] _envelope = [];
    private DataKey? _key;

    [GlobalSetup]
    public void Setup()
    {
        _services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        _serializer = _services.GetRequiredService<Serializer>();
        _plain = new OrleansGrainStorageSerializer(_serializer);
        _state = BenchmarkState.Create();
        _plainPayload = _plain.Serialize(_state);
        _key = new DataKey(Guid.NewGuid(), 1, RandomNumberGenerator.GetBytes(32));
        _envelope = Seal();
    }

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Write")]
    public BinaryData Write_Plaintext() => _plain!.Serialize(_state);

    [Benchmark]
    [BenchmarkCategory("Write")]
    public byte[] Write_Encrypted() => Seal();

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Read")]
    public BenchmarkState Read_Plaintext() => _plain!.Deserialize<BenchmarkState>(_plainPayload!)!;

    [Benchmark]
    [BenchmarkCategory("Read")]
    public BenchmarkState Read_Encrypted()
    {
        EnvelopeCipher.ReadHeader(_envelope);
        _ = DataKeyScope.For(GrainId);
        return EnvelopeCipher.Open(_envelope, AssociatedData(), _key!, plaintext => _serializer!.Deserialize<BenchmarkState>(plaintext))!;
    }

    [GlobalCleanup]
    public void Cleanup() => _services?.Dispose();

    private byte[] Seal()
    {
        _ = DataKeyScope.For(GrainId);
        return EnvelopeCipher.Seal(_serializer!.SerializeToArray(_state), AssociatedData(), _key!);
    }

    private static byte[] AssociatedData() => EnvelopeCipher.AssociatedData(GrainId.Type.AsSpan(), GrainId.Key.AsSpan(), "state");
}
