using System.Security.Cryptography;
using Bastion.Cluster;
using Bastion.Tests.Silo.Security;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// Service token validation on its own (no cluster): a token proves exactly one configured service, and only while it is
/// current. Every token here is assembled member by member (<see cref="ForgedToken"/>), so a case can name any
/// <c>kid</c>, <c>iss</c>, <c>sub</c> or <c>aud</c>; the expected outcome of each case is written in the table by hand.
/// </summary>
public sealed class ServiceTokensTests : IDisposable
{
    private const string Alpha = "svc-alpha";
    private const string Beta = "svc-beta";
    private const string Unconfigured = "svc-unconfigured";
    private const string Audience = "bastion-cluster";

    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly string _directory = Directory.CreateTempSubdirectory("bastion-service-tokens-").FullName;
    private readonly Dictionary<string, ECDsa> _privateKeys = new(StringComparer.Ordinal);
    private readonly FakeTimeProvider _time = new(Start);
    private readonly ServiceTokens _tokens;

    public ServiceTokensTests()
    {
        var configured = new List<ServiceKeyOptions>();
        foreach (var name in new[] { Alpha, Beta, Unconfigured })
        {
            var pair = ServiceKeyPair.Create(_directory, name);
            var key = ECDsa.Create();
            key.ImportFromPem(File.ReadAllText(pair.PrivateKeyFile));
            _privateKeys[name] = key;
            if (name != Unconfigured)
            {
                configured.Add(new ServiceKeyOptions { Name = name, PublicKeyFile = pair.PublicKeyFile });
            }
        }

        _tokens = new ServiceTokens(new ServiceKeys(Options.Create(new ServiceAccessOptions { Services = configured })), _time);
    }

    /// <summary>
    /// One row per case: the header's <c>kid</c>, the claims, whose private key signs it, and its times relative to now (seconds);
    /// <c>accepted</c> is the service the silo must see, or null for a refusal.
    /// </summary>
    [Theory]
    [InlineData("valid", Alpha, Alpha, Alpha, Audience, Alpha, 0, 300, Alpha)]
    [InlineData("valid, the other service", Beta, Beta, Beta, Audience, Beta, 0, 300, Beta)]
    [InlineData("wrong sub: alpha's key, claims to be beta", Alpha, Alpha, Beta, Audience, Alpha, 0, 300, null)]
    [InlineData("sub != kid: beta's own valid key, sub names alpha", Beta, Beta, Alpha, Audience, Beta, 0, 300, null)]
    [InlineData("wrong iss", Alpha, Beta, Alpha, Audience, Alpha, 0, 300, null)]
    [InlineData("iss and sub beta, kid alpha", Alpha, Beta, Beta, Audience, Alpha, 0, 300, null)]
    [InlineData("wrong aud: the HTTP API's", Alpha, Alpha, Alpha, "bastion-api", Alpha, 0, 300, null)]
    [InlineData("wrong aud: empty", Alpha, Alpha, Alpha, "", Alpha, 0, 300, null)]
    [InlineData("wrong kid: names beta, signed by alpha", Beta, Beta, Beta, Audience, Alpha, 0, 300, null)]
    [InlineData("unknown kid: a service no silo is configured with", Unconfigured, Unconfigured, Unconfigured, Audience, Unconfigured, 0, 300, null)]
    [InlineData("kid differs only in case", "SVC-ALPHA", "SVC-ALPHA", "SVC-ALPHA", Audience, Alpha, 0, 300, null)]
    [InlineData("expired long ago", Alpha, Alpha, Alpha, Audience, Alpha, -400, -100, null)]
    [InlineData("expired 31 s ago (past the 30 s skew)", Alpha, Alpha, Alpha, Audience, Alpha, -200, -31, null)]
    [InlineData("expired 30 s ago (within the skew)", Alpha, Alpha, Alpha, Audience, Alpha, -200, -30, Alpha)]
    [InlineData("issued in the future", Alpha, Alpha, Alpha, Audience, Alpha, 120, 300, null)]
    [InlineData("lives longer than 5 minutes", Alpha, Alpha, Alpha, Audience, Alpha, 0, 301, null)]
    public async Task Validate_TokenFromTable_ProvesOnlyTheServiceWhoseKeySignedItForItself(
        string @case, string kid, string issuer, string subject, string audience, string signedBy, long issuedAt, long expires, string? accepted)
    {
        var now = Start.ToUnixTimeSeconds();
        var token = Token(kid, issuer, subject, audience, now + issuedAt, now + expires).SignEs256(_privateKeys[signedBy]);

        var caller = await _tokens.ValidateAsync(token);

        Assert.True(accepted == caller?.Service, $"{@case}: expected {accepted ?? "refused"}, got {caller?.Service ?? "refused"}");
    }

    [Fact]
    public async Task Validate_WithAnAct_NamesTheUserActedFor()
    {
        var now = Start.ToUnixTimeSeconds();
        var token = Token(Alpha, Alpha, Alpha, Audience, now, now + 300).Set("payload", "act", ForgedToken.Text("alice")).SignEs256(_privateKeys[Alpha]);

        var caller = await _tokens.ValidateAsync(token);

        Assert.Equal(new ServiceCaller(Alpha, "alice", Start), caller);
    }

    [Fact]
    public async Task Validate_ACachedToken_IsRefusedOnceItExpires()
    {
        var now = Start.ToUnixTimeSeconds();
        var token = Token(Alpha, Alpha, Alpha, Audience, now, now + 120).SignEs256(_privateKeys[Alpha]);
        Assert.NotNull(await _tokens.ValidateAsync(token));

        // Hand-written timeline: seconds after issue → accepted? (exp = 120, skew = 30: the last accepted second is 150).
        (long Seconds, bool Accepted)[] timeline = [(60, true), (120, true), (150, true), (151, false), (152, false), (400, false)];
        foreach (var (seconds, expected) in timeline)
        {
            _time.SetUtcNow(Start.AddSeconds(seconds));
            Assert.True(expected == (await _tokens.ValidateAsync(token) is not null), $"{seconds} s after issue: expected {(expected ? "accepted" : "refused")}");
        }
    }

    [Fact]
    public async Task Validate_ACachedToken_KeepsItsIssueTimeSoARevokeTokensStillRefusesIt()
    {
        // The cache answers with the token's own iat, never the time of the look-up: the user grain refuses a token issued
        // before the service's last revoke-tokens (ServiceGatewayOwnershipTests shows it end to end).
        var now = Start.ToUnixTimeSeconds();
        var token = Token(Alpha, Alpha, Alpha, Audience, now, now + 300).SignEs256(_privateKeys[Alpha]);
        Assert.Equal(Start, (await _tokens.ValidateAsync(token))!.IssuedAt);

        _time.Advance(TimeSpan.FromSeconds(200));
        Assert.Equal(Start, (await _tokens.ValidateAsync(token))!.IssuedAt);
    }

    [Fact]
    public async Task Validate_ATokenWhoseSignatureWasSwapped_IsRefusedEvenAfterTheGenuineOneWasCached()
    {
        var now = Start.ToUnixTimeSeconds();
        var genuine = Token(Alpha, Alpha, Alpha, Audience, now, now + 300).SignEs256(_privateKeys[Alpha]);
        Assert.NotNull(await _tokens.ValidateAsync(genuine));

        // Beta's claims under alpha's cached signature: the cache is keyed by the whole token, so this is verified afresh.
        var spliced = Token(Alpha, Alpha, Beta, Audience, now, now + 300).SigningInput + genuine[genuine.LastIndexOf('.')..];
        Assert.Null(await _tokens.ValidateAsync(spliced));
    }

    /// <summary>
    /// One member changed, added or removed (a null value removes it) on an otherwise valid token issued now with exp now+300;
    /// times are seconds from now. The expected outcome is written by hand: the skew is 30 s, the longest lifetime 300 s.
    /// </summary>
    [Theory]
    [InlineData("payload", "jti", null, false)]
    [InlineData("payload", "iat", null, false)]
    [InlineData("payload", "nbf", null, false)]
    [InlineData("payload", "exp", null, false)]
    [InlineData("payload", "iss", null, false)]
    [InlineData("payload", "aud", null, false)]
    [InlineData("payload", "sub", null, false)]
    [InlineData("payload", "iat", "\"0\"", false)] // a date as a string
    [InlineData("payload", "aud", "[\"bastion-cluster\"]", false)] // an audience list
    [InlineData("payload", "nbf", "+30", true)] // not yet valid, within the skew
    [InlineData("payload", "nbf", "+31", false)]
    [InlineData("payload", "iat", "+30", true)]
    [InlineData("payload", "iat", "+31", false)]
    [InlineData("payload", "nbf", "+301", false)] // after its own expiry
    [InlineData("payload", "exp", "+1", true)]
    [InlineData("payload", "exp", "+0", true)] // issued, valid from and expiring at one instant: a lifetime of zero is still a lifetime
    [InlineData("header", "alg", "\"ES384\"", false)]
    [InlineData("header", "alg", "\"HS256\"", false)]
    [InlineData("header", "alg", "\"none\"", false)]
    [InlineData("header", "typ", "\"JWT\"", false)]
    [InlineData("header", "typ", null, false)]
    [InlineData("header", "kid", null, false)]
    public async Task Validate_OneMemberChanged_IsJudgedByTheRulesWrittenHere(string part, string name, string? value, bool accepted)
    {
        var now = Start.ToUnixTimeSeconds();
        var token = Token(Alpha, Alpha, Alpha, Audience, now, now + 300);
        var members = token.Part(part);
        members.RemoveAll(member => member.Key == name);
        if (value is not null)
        {
            members.Add(ForgedToken.Member(name, value.StartsWith('+') ? $"{now + long.Parse(value[1..], System.Globalization.CultureInfo.InvariantCulture)}" : value));
        }

        var caller = await _tokens.ValidateAsync(token.SignEs256(_privateKeys[Alpha]));

        Assert.Equal(accepted, caller is not null);
    }

    [Fact]
    public async Task Validate_IssuedOrValidOnlyAfterItExpires_IsRefused()
    {
        // iat within the skew but after exp: the lifetime is negative, which no valid token has.
        var now = Start.ToUnixTimeSeconds();
        var token = Token(Alpha, Alpha, Alpha, Audience, now + 20, now + 10);
        token.Set("payload", "nbf", $"{now}");

        Assert.Null(await _tokens.ValidateAsync(token.SignEs256(_privateKeys[Alpha])));

        // Likewise valid only from after it expires (nbf within the skew).
        var late = Token(Alpha, Alpha, Alpha, Audience, now, now + 10).Set("payload", "nbf", $"{now + 20}");
        Assert.Null(await _tokens.ValidateAsync(late.SignEs256(_privateKeys[Alpha])));
    }

    [Fact]
    public async Task Validate_LifetimeIsMeasuredFromIssue_NotFromNow()
    {
        // Issued 250 s ago, expiring in 51 s: 301 s of lifetime, though only 51 remain.
        var now = Start.ToUnixTimeSeconds();
        Assert.Null(await _tokens.ValidateAsync(Token(Alpha, Alpha, Alpha, Audience, now - 250, now + 51).SignEs256(_privateKeys[Alpha])));
        Assert.NotNull(await _tokens.ValidateAsync(Token(Alpha, Alpha, Alpha, Audience, now - 250, now + 50).SignEs256(_privateKeys[Alpha])));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("not.a.token")]
    public async Task Validate_NoToken_IsNoService(string? token) => Assert.Null(await _tokens.ValidateAsync(token));

    [Fact]
    public async Task Validate_ManyDistinctTokens_EachStillValidatesPastTheCacheCapacity()
    {
        var now = Start.ToUnixTimeSeconds();
        var first = Token(Alpha, Alpha, Alpha, Audience, now, now + 300).SignEs256(_privateKeys[Alpha]);
        Assert.NotNull(await _tokens.ValidateAsync(first));
        for (var i = 0; i < 4100; i++)
        {
            Assert.NotNull(await _tokens.ValidateAsync(Token(Alpha, Alpha, Alpha, Audience, now, now + 300).SignEs256(_privateKeys[Alpha])));
        }

        Assert.NotNull(await _tokens.ValidateAsync(first));
        _time.Advance(TimeSpan.FromSeconds(331));
        Assert.Null(await _tokens.ValidateAsync(first));
    }

    public void Dispose()
    {
        foreach (var key in _privateKeys.Values)
        {
            key.Dispose();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private static ForgedToken Token(string kid, string issuer, string subject, string audience, long issuedAt, long expires)
    {
        var token = new ForgedToken();
        token.Header.AddRange([ForgedToken.Member("alg", ForgedToken.Text("ES256")), ForgedToken.Member("typ", ForgedToken.Text("svc+jwt")), ForgedToken.Member("kid", ForgedToken.Text(kid))]);
        token.Payload.AddRange(
        [
            ForgedToken.Member("iss", ForgedToken.Text(issuer)), ForgedToken.Member("aud", ForgedToken.Text(audience)), ForgedToken.Member("sub", ForgedToken.Text(subject)),
            ForgedToken.Member("jti", ForgedToken.Text(Guid.NewGuid().ToString("N"))),
            ForgedToken.Member("iat", $"{issuedAt}"), ForgedToken.Member("nbf", $"{issuedAt}"), ForgedToken.Member("exp", $"{expires}"),
        ]);
        return token;
    }
}
