using BenchmarkDotNet.Attributes;
using Bastion.Access;
using Bastion.Cluster;
using Bastion.Generation;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Invocation;

namespace Bastion.Benchmarks;

/// <summary>
/// The silo assertion every silo attaches to its calls (an HMAC-SHA256), made by the caller and checked by the callee,
/// and the digest of the call's arguments it binds, which both ends compute (here for the edge's <c>SubmitAsync</c>).
/// </summary>
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
    private ServiceProvider? _services;
    private CallArgumentsDigest? _digest;
    private IInvokable? _submit;

    [GlobalSetup]
    public void Setup()
    {
        _keyring = new BenchmarkKeyring();
        _assertions = new SiloAssertion(_keyring.Keys, TimeProvider.System);
        _assertion = _assertions.Create(Call);
        _services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        _digest = new CallArgumentsDigest(_services.GetRequiredService<Serializer>());
        _submit = SubmitInvokable(
            new Credential(CredentialKind.ApiKey, "0123456789abcdef01234567", [new SecretHash(1, new byte[32])], 0),
            new GenerationRequest("bastion-tiny-gpt2", new string('x', 400), 64));
    }

    [Benchmark]
    public string Create() => _assertions!.Create(Call);

    [Benchmark]
    public bool Verify() => _assertions!.Verify(_assertion, Call);

    [Benchmark]
    public byte[] DigestSubmitArguments() => _digest!.Of(_submit!);

    [GlobalCleanup]
    public void Dispose()
    {
        _keyring?.Dispose();
        _services?.Dispose();
        GC.SuppressFinalize(this);
    }

    // The invokable Orleans generates for IUserGrain.SubmitAsync, the call the edge makes for every request.
    private static IInvokable SubmitInvokable(Credential credential, GenerationRequest request)
    {
        var type = typeof(IUserGrain).Assembly.GetTypes().Single(t =>
            typeof(IInvokable).IsAssignableFrom(t) && !t.IsAbstract && t.Name.Contains("IUserGrain", StringComparison.Ordinal)
            && ((IInvokable)Activator.CreateInstance(t, nonPublic: true)!).GetMethodName() == nameof(IUserGrain.SubmitAsync));
        var invokable = (IInvokable)Activator.CreateInstance(type, nonPublic: true)!;
        invokable.SetArgument(0, credential);
        invokable.SetArgument(1, request);
        return invokable;
    }
}
