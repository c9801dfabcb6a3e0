using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bastion.Security;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Security;

/// <summary>
/// External-issuer tokens: a <c>typ</c> from the allow-list, a lifetime (<c>exp</c> − <c>iat</c>) within the cap,
/// and anything malformed refused quietly. Tokens are written by hand and signed RS256 with the issuer's key, so
/// each refusal is the check under test.
/// </summary>
public sealed class ExternalTokenTests : IDisposable
{
    private const string Issuer = "https://idp.example.test/";
    private const string Audience = "bastion";
    private const string Kid = "idp-1";
    private static readonly DateTimeOffset Start = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly long Now = Start.ToUnixTimeSeconds();

    private readonly RSA _key = RSA.Create(2048);
    private readonly string _jwks = Path.Combine(Path.GetTempPath(), "bastion-idp-jwks-" + Guid.NewGuid().ToString("N") + ".json");
    private readonly FakeTimeProvider _time = new(Start);

    public ExternalTokenTests()
    {
        var parameters = _key.ExportParameters(false);
        File.WriteAllText(_jwks, JsonSerializer.Serialize(new
        {
            keys = new[] { new { kty = "RSA", kid = Kid, use = "sig", n = Base64Url(parameters.Modulus!), e = Base64Url(parameters.Exponent!) } },
        }));
    }

    public void Dispose()
    {
        _key.Dispose();
        File.Delete(_jwks);
    }

    [Fact]
    public async Task Baseline_JwtTypedFifteenMinuteToken_IsAccepted()
    {
        Assert.True(await AcceptsAsync(Token()));
    }

    [Theory]
    [InlineData("JWT", true)]
    [InlineData("jwt", true)]
    [InlineData("at+jwt", true)]
    [InlineData("application/at+jwt", true)]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("id_token+jwt", false)]
    [InlineData("dpop+jwt", false)]
    [InlineData("secevent+jwt", false)]
    public async Task Typ_MustBeOnTheDefaultAllowList(string? typ, bool accepted)
    {
        Assert.Equal(accepted, await AcceptsAsync(Token(typ: typ, omitTyp: typ is null)));
    }

    [Fact]
    public async Task Typ_ConfiguredAllowList_ReplacesTheDefaults()
    {
        var tokens = Create(issuer => issuer.AllowedTypes = ["at+jwt"]);

        Assert.NotNull(await tokens.ValidateAsync(Token(typ: "at+jwt")));
        Assert.Null(await tokens.ValidateAsync(Token(typ: "JWT")));
    }

    [Theory]
    [InlineData(3600, true)]
    [InlineData(3601, false)]
    [InlineData(86400, false)]
    public async Task Lifetime_DefaultCapIsOneHour(long lifetimeSeconds, bool accepted)
    {
        // Issued 10 minutes ago, so every one of them is still current.
        Assert.Equal(accepted, await AcceptsAsync(Token(issuedAt: Now - 600, expires: Now - 600 + lifetimeSeconds)));
    }

    [Fact]
    public async Task Lifetime_ConfiguredCap_IsEnforced()
    {
        var tokens = Create(issuer => issuer.MaxLifetime = TimeSpan.FromMinutes(5));

        Assert.NotNull(await tokens.ValidateAsync(Token(issuedAt: Now - 60, expires: Now + 240)));
        Assert.Null(await tokens.ValidateAsync(Token(issuedAt: Now - 60, expires: Now + 241)));
    }

    [Fact]
    public async Task Exp_Missing_IsRefused()
    {
        Assert.Null(await Create().ValidateAsync(Token(expires: null)));
    }

    [Fact]
    public async Task Iat_Missing_IsRefused()
    {
        Assert.Null(await Create().ValidateAsync(Token(issuedAt: null)));
    }

    [Theory]
    [InlineData("x")]
    [InlineData("a.b.c")]
    [InlineData("....")]
    [InlineData("ünïcödé.ünïcödé.ünïcödé")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.e30")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.!!!.sig")]
    [InlineData("bm90IGpzb24.bm90IGpzb24.c2ln")]
    [InlineData("W10.W10.c2ln")]
    [InlineData("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOiJzb29uIn0.c2ln")]
    [InlineData("eyJhbGciOjF9.eyJpc3MiOnt9fQ.c2ln")]
    public async Task Malformed_IsRefusedWithoutThrowing(string token)
    {
        Assert.Null(await Create().ValidateAsync(token));
    }

    [Fact]
    public async Task Malformed_HugeOrWhitespace_IsRefusedWithoutThrowing()
    {
        Assert.Null(await Create().ValidateAsync(new string('A', 1 << 20)));
        Assert.Null(await Create().ValidateAsync(Token() + " "));
        Assert.Null(await Create().ValidateAsync(Token().Replace('.', '\n')));
    }

    private async Task<bool> AcceptsAsync(string token) => await Create().ValidateAsync(token) is not null;

    private ExternalTokens Create(Action<ExternalIssuerOptions>? configure = null)
    {
        var issuer = new ExternalIssuerOptions { Name = "corp", Issuer = Issuer, Audience = Audience, JwksFile = _jwks };
        configure?.Invoke(issuer);
        return new ExternalTokens(Options.Create(new AuthOptions { ExternalIssuers = [issuer] }), new Pseudonymizer(TestKeys.Provider()), _time);
    }

    private string Token(string? typ = "JWT", bool omitTyp = false, long? issuedAt = -1, long? expires = -1)
    {
        var header = new Dictionary<string, object> { ["alg"] = "RS256", ["kid"] = Kid };
        if (!omitTyp)
        {
            header["typ"] = typ!;
        }

        var payload = new Dictionary<string, object> { ["iss"] = Issuer, ["aud"] = Audience, ["sub"] = "alice", ["nbf"] = Now - 600 };
        if (issuedAt is { } iat)
        {
            payload["iat"] = iat == -1 ? Now - 600 : iat;
        }

        if (expires is { } exp)
        {
            payload["exp"] = exp == -1 ? Now + 300 : exp;
        }

        var signed = Base64Url(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(payload));
        return signed + "." + Base64Url(_key.SignData(Encoding.ASCII.GetBytes(signed), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    private static string Base64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}
