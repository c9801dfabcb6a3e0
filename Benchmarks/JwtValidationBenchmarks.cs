using BenchmarkDotNet.Attributes;
using Bastion.Security;
using Microsoft.Extensions.Options;

namespace Bastion.Benchmarks;

/// <summary>One ES256 access-token validation, as the edge does it per request (strict read, kid lookup, signature).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[MemoryDiagnoser]
public class JwtValidationBenchmarks : IDisposable
{
    private BenchmarkKeyring? _keyring;
    private AccessTokens? _tokens;
    private string _token = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        _keyring = new BenchmarkKeyring();
        _tokens = new AccessTokens(_keyring.Keys, Options.Create(new TokenOptions()), TimeProvider.System);
        (_token, _) = _tokens.Issue("pseudonym-1", "key-1", 1);
    }

    [Benchmark]
    public async Task<bool> ValidateEs256AccessToken() => await _tokens!.ValidateAsync(_token) is not null;

    [GlobalCleanup]
    public void Dispose()
    {
        _keyring?.Dispose();
        GC.SuppressFinalize(this);
    }
}
