using System.Security.Cryptography;
using System.Text;
using Bastion.Security;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using static Bastion.Tests.Silo.Security.ForgedToken;

namespace Bastion.Tests.Silo.Security;

/// <summary>
/// Hostile tokens against <see cref="AccessTokens"/>: every class of RFC 8725 attack, then generated
/// mutations of a valid token re-signed with the real key, so only the claim checks stand in the way.
/// </summary>
public sealed class AccessTokenAttackTests
{
    private static readonly DateTimeOffset Start = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly long Now = Start.ToUnixTimeSeconds();

    private readonly FakeTimeProvider _time = new(Start);
    private readonly AccessTokens _tokens;

    public AccessTokenAttackTests() => _tokens = Create(TestKeys.Provider());

    private AccessTokens Create(IKeyProvider keys) => new(keys, Options.Create(new TokenOptions()), _time);

    private async Task<bool> AcceptsAsync(string token) => await _tokens.ValidateAsync(token) is not null;

    private static ForgedToken Valid() => ForgedToken.Valid(TestKeys.EcKid, Now);

    [Fact]
    public async Task IssuedToken_IsAccepted_WithItsPseudonymKeyIdAndGeneration()
    {
        var (token, _) = _tokens.Issue("pseudonym-1", "key-1", 7);

        var validated = await _tokens.ValidateAsync(token);

        Assert.NotNull(validated);
        Assert.Equal("pseudonym-1", validated.Value.Pseudonym);
        Assert.Equal("key-1", validated.Value.Credential.KeyId);
        Assert.Equal(7, validated.Value.Credential.RevocationGeneration);
    }

    [Fact]
    public async Task ForgedBaseline_SignedWithTheRealKey_IsAccepted()
    {
        // The forge reproduces a genuine token, so each refusal below is the check under test, not the forge.
        Assert.True(await AcceptsAsync(Valid().SignEs256(TestKeys.Ec)));
    }

    [Fact]
    public async Task Rs256_FromAnRsaKey_IsAccepted()
    {
        var tokens = Create(TestKeys.Provider(signWithRsa: true));
        var (token, _) = tokens.Issue("pseudonym-1", "key-1", 1);

        Assert.NotNull(await tokens.ValidateAsync(token));
        Assert.True(await AcceptsAsync(ForgedToken.Valid(TestKeys.RsaKid, Now, "RS256").SignRs256(TestKeys.Rsa)));
    }

    [Theory]
    [InlineData("none", false)]
    [InlineData("none", true)]
    [InlineData("None", false)]
    [InlineData("None", true)]
    [InlineData("NONE", false)]
    [InlineData("NONE", true)]
    [InlineData("nOnE", false)]
    [InlineData("nOnE", true)]
    public async Task AlgNone_InAnyCasing_IsRefused(string alg, bool withSignature)
    {
        var forged = Valid().Set("header", "alg", Text(alg));

        var token = withSignature ? forged.SignEs256(TestKeys.Ec) : forged.Unsigned();

        Assert.False(await AcceptsAsync(token));
        Assert.False(await AcceptsAsync(token[..^1] + (withSignature ? string.Empty : "x")));
    }

    [Theory]
    [InlineData("HS256", "pem")]
    [InlineData("HS384", "pem")]
    [InlineData("HS512", "pem")]
    [InlineData("HS256", "der")]
    [InlineData("HS384", "der")]
    [InlineData("HS512", "der")]
    [InlineData("HS256", "raw")]
    [InlineData("HS512", "raw")]
    public async Task Hmac_KeyedWithThePublicKey_IsRefused(string alg, string form)
    {
        var point = TestKeys.Ec.ExportParameters(false).Q;
        var secret = form switch
        {
            "pem" => Encoding.ASCII.GetBytes(TestKeys.Ec.ExportSubjectPublicKeyInfoPem()),
            "der" => TestKeys.Ec.ExportSubjectPublicKeyInfo(),
            _ => [0x04, .. point.X!, .. point.Y!],
        };

        Assert.False(await AcceptsAsync(Valid().Set("header", "alg", Text(alg)).SignHmac(alg, secret)));
        var rsaSecret = form == "pem" ? Encoding.ASCII.GetBytes(TestKeys.Rsa.ExportSubjectPublicKeyInfoPem()) : TestKeys.Rsa.ExportSubjectPublicKeyInfo();
        Assert.False(await AcceptsAsync(ForgedToken.Valid(TestKeys.RsaKid, Now, alg).SignHmac(alg, rsaSecret)));
    }

    [Fact]
    public async Task StrippedSignature_IsRefused()
    {
        var signed = Valid().SignEs256(TestKeys.Ec);
        var input = signed[..signed.LastIndexOf('.')];

        Assert.False(await AcceptsAsync(input + "."));
        Assert.False(await AcceptsAsync(input));
        Assert.False(await AcceptsAsync(input + ".."));
        Assert.False(await AcceptsAsync(input + "." + signed[(signed.LastIndexOf('.') + 1)..][..20]));
    }

    [Fact]
    public async Task SignatureFromAForeignKey_WithTheSameKid_IsRefused()
    {
        using var foreign = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var foreignRsa = RSA.Create(2048);

        Assert.False(await AcceptsAsync(Valid().SignEs256(foreign)));
        Assert.False(await AcceptsAsync(ForgedToken.Valid(TestKeys.RsaKid, Now, "RS256").SignRs256(foreignRsa)));
    }

    [Fact]
    public async Task TamperedPayload_UnderTheOriginalSignature_IsRefused()
    {
        var signed = Valid().SignEs256(TestKeys.Ec);
        var parts = signed.Split('.');
        var tampered = Valid().Set("payload", "sub", Text("admin")).SigningInput.Split('.')[1];

        Assert.False(await AcceptsAsync($"{parts[0]}.{tampered}.{parts[2]}"));
    }

    public static TheoryData<string> HostileKids => new(
        Text("../../keyring.json"), Text("' OR 1=1 --"), Text("/dev/null"), Text(""), Text(new string('k', 5000)),
        Text("ES-CURRENT"), Text(TestKeys.EcKid + " "), Text(TestKeys.EcKid + "\0"), Text("file:///etc/passwd"), Text("*"),
        "42", "null", "true", "[" + Text(TestKeys.EcKid) + "]", "{\"kid\":" + Text(TestKeys.EcKid) + "}");

    [Theory]
    [MemberData(nameof(HostileKids))]
    public async Task Kid_TraversalInjectionOrNotAString_IsRefused(string rawKid)
    {
        Assert.False(await AcceptsAsync(Valid().Set("header", "kid", rawKid).SignEs256(TestKeys.Ec)));
    }

    [Fact]
    public async Task Kid_Missing_IsRefused()
    {
        var forged = Valid();
        forged.Header.RemoveAll(member => member.Key == "kid");

        Assert.False(await AcceptsAsync(forged.SignEs256(TestKeys.Ec)));
    }

    public static TheoryData<string, string> ForbiddenHeaderMembers()
    {
        var point = TestKeys.Ec.ExportParameters(false).Q;
        var jwk = $"{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"{Encode(point.X!)}\",\"y\":\"{Encode(point.Y!)}\",\"kid\":\"{TestKeys.EcKid}\"}}";
        return new()
        {
            { "jwk", jwk },
            { "jku", Text("https://attacker.example/jwks.json") },
            { "x5u", Text("https://attacker.example/cert.pem") },
            { "x5c", "[" + Text(Convert.ToBase64String(TestKeys.Ec.ExportSubjectPublicKeyInfo())) + "]" },
            { "x5t", Text("dGh1bWJwcmludA") },
            { "x5t#S256", Text("dGh1bWJwcmludA") },
            { "crit", "[\"exp\"]" },
            { "crit", "[\"x-bastion-unknown\"]" },
            { "b64", "false" },
            { "zip", Text("DEF") },
            { "cty", Text("JWT") },
            { "enc", Text("A256GCM") },
            { "x-custom", Text("anything") },
        };
    }

    [Theory]
    [MemberData(nameof(ForbiddenHeaderMembers))]
    public async Task HeaderMember_OutsideTheAllowList_IsRefused(string name, string rawValue)
    {
        Assert.False(await AcceptsAsync(Valid().Set("header", name, rawValue).SignEs256(TestKeys.Ec)));
    }

    [Fact]
    public async Task Expiry_IsAcceptedWithinTheSkew_AndRefusedBeyondIt()
    {
        var (token, lifetime) = _tokens.Issue("pseudonym-1", "key-1", 1);

        _time.Advance(TimeSpan.FromSeconds(lifetime + 29));
        Assert.True(await AcceptsAsync(token));

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(await AcceptsAsync(token));
    }

    [Theory]
    [InlineData("nbf", 29, true)]
    [InlineData("nbf", 31, false)]
    [InlineData("iat", 29, true)]
    [InlineData("iat", 31, false)]
    [InlineData("both", 31, false)]
    public async Task FutureIssuedAtOrNotBefore_IsRefusedOnlyBeyondTheSkew(string claim, int secondsAhead, bool accepted)
    {
        var at = Now + secondsAhead;
        var forged = Valid().Set("payload", "exp", $"{at + 600}");
        if (claim is "nbf" or "both")
        {
            forged.Set("payload", "nbf", $"{at}");
        }

        if (claim is "iat" or "both")
        {
            forged.Set("payload", "iat", $"{at}");
        }

        Assert.Equal(accepted, await AcceptsAsync(forged.SignEs256(TestKeys.Ec)));
    }

    [Theory]
    [InlineData("payload", "aud", "\"bastion-admin\"")]
    [InlineData("payload", "aud", "[\"bastion-api\"]")]
    [InlineData("payload", "iss", "\"https://evil.example\"")]
    [InlineData("payload", "iss", "\"Bastion\"")]
    [InlineData("header", "typ", "\"JWT\"")]
    [InlineData("header", "typ", "\"AT+JWT\"")]
    [InlineData("header", "typ", "\"application/at+jwt\"")]
    public async Task WrongAudienceIssuerOrType_IsRefused(string part, string name, string rawValue)
    {
        Assert.False(await AcceptsAsync(Valid().Set(part, name, rawValue).SignEs256(TestKeys.Ec)));
    }

    [Fact]
    public async Task MissingType_IsRefused()
    {
        var forged = Valid();
        forged.Header.RemoveAll(member => member.Key == "typ");

        Assert.False(await AcceptsAsync(forged.SignEs256(TestKeys.Ec)));
    }

    [Fact]
    public async Task Oversize_IsRefused_WhileALargeTokenUnderTheLimitIsAccepted()
    {
        var large = Valid().Set("payload", "pad", Text(new string('p', 5000))).SignEs256(TestKeys.Ec);
        var oversize = Valid().Set("payload", "pad", Text(new string('p', 6200))).SignEs256(TestKeys.Ec);

        Assert.InRange(large.Length, 1, AccessTokens.MaxTokenBytes);
        Assert.True(await AcceptsAsync(large));
        Assert.True(oversize.Length > AccessTokens.MaxTokenBytes);
        Assert.False(await AcceptsAsync(oversize));
    }

    [Fact]
    public async Task JweShaped_FiveParts_IsRefused()
    {
        var header = Encode($"{{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\",\"kid\":\"{TestKeys.RsaKid}\"}}");
        var signed = Valid().SignEs256(TestKeys.Ec);

        Assert.False(await AcceptsAsync($"{header}.{Encode("key")}.{Encode("iv")}.{Encode("ciphertext")}.{Encode("tag")}"));
        Assert.False(await AcceptsAsync($"{signed}.{Encode("x")}.{Encode("y")}"));
    }

    public static TheoryData<string> Garbage => new(
        "", ".", "..", "...", "....", "not-a-token", "eyJ", "a.b.c", "eyJhbGciOiJFUzI1NiJ9",
        Encode("{}") + "." + Encode("{}") + "." + Encode("sig"),
        Encode("[]") + "." + Encode("{}") + "." + Encode("sig"),
        Encode("not json") + "." + Encode("{}") + "." + Encode("sig"),
        Encode("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"es-current\"} trailing") + "." + Encode("{}") + "." + Encode("sig"),
        Encode("{\"alg\":\"ES256\",/*c*/\"typ\":\"at+jwt\",\"kid\":\"es-current\"}") + "." + Encode("{}") + "." + Encode("sig"),
        "eyJhbGciOiJFUzI1NiJ9 .eyJ9.c2ln", "eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln=", "ëyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln",
        "e.e.e", "====.====.====", "+/+/.+/+/.+/+/", Convert.ToBase64String(RandomNumberGenerator.GetBytes(300)));

    [Theory]
    [MemberData(nameof(Garbage))]
    public async Task Garbage_IsRefused(string token)
    {
        Assert.False(await AcceptsAsync(token));
    }

    [Fact]
    public async Task DuplicateHidingBehindAnEscape_IsRefused()
    {
        var forged = Valid();
        forged.Header.Add(Member("\\u0061lg", Text("none")));
        forged.Payload.Add(Member("s\\u0075b", Text("admin")));

        Assert.False(await AcceptsAsync(forged.SignEs256(TestKeys.Ec)));
    }

    [Fact]
    public async Task UnknownPayloadClaims_AreAllowedButNeverRead()
    {
        var forged = Valid().Set("payload", "scope", Text("admin")).Set("payload", "roles", "[\"admin\"]");

        var validated = await _tokens.ValidateAsync(forged.SignEs256(TestKeys.Ec));

        Assert.NotNull(validated);
        Assert.Equal("pseudonym-1", validated.Value.Pseudonym);
    }

    public static TheoryData<string> MutationNames => new(Mutations.Keys);

    /// <summary>
    /// Every header member and payload claim of a valid token, dropped, duplicated, given another JSON
    /// type and given other values, then re-signed with the real key.
    /// </summary>
    [Theory]
    [MemberData(nameof(MutationNames))]
    public async Task Mutation_ReSignedWithTheRealKey_IsRefusedUnlessHarmless(string name)
    {
        var mutation = Mutations[name];
        var forged = Valid();
        mutation.Apply(forged);

        Assert.Equal(mutation.Harmless, await AcceptsAsync(forged.SignEs256(TestKeys.Ec)));
    }

    private sealed record Mutation(Action<ForgedToken> Apply, bool Harmless);

    private static readonly Dictionary<string, Mutation> Mutations = BuildMutations();

    private static Dictionary<string, Mutation> BuildMutations()
    {
        var mutations = new Dictionary<string, Mutation>(StringComparer.Ordinal);
        var template = Valid();
        foreach (var part in new[] { "header", "payload" })
        {
            foreach (var (name, value) in template.Part(part))
            {
                mutations[$"{part}.{name} dropped"] = new(t => t.Part(part).RemoveAll(m => m.Key == name), false);
                mutations[$"{part}.{name} duplicated"] = new(t => t.Part(part).Add(Member(name, value)), false);
                foreach (var (label, raw) in OtherTypes(value))
                {
                    mutations[$"{part}.{name} as {label}"] = new(t => t.Set(part, name, raw), false);
                    mutations[$"{part}.{name} duplicated as {label}"] = new(t => t.Part(part).Add(Member(name, raw)), false);
                }

                foreach (var (raw, harmless) in OtherValues(name))
                {
                    mutations[$"{part}.{name} = {raw}"] = new(t => t.Set(part, name, raw), harmless);
                    mutations[$"{part}.{name} duplicated = {raw}"] = new(t => t.Part(part).Add(Member(name, raw)), false);
                }
            }
        }

        return mutations;
    }

    private static IEnumerable<(string Label, string Raw)> OtherTypes(string value)
    {
        var isString = value.StartsWith('"');
        yield return isString ? ("number", "42") : ("string", Text(value));
        yield return ("null", "null");
        yield return ("true", "true");
        yield return ("array", $"[{value}]");
        yield return ("object", $"{{\"value\":{value}}}");
        if (!isString)
        {
            yield return ("fraction", value + ".5");
            yield return ("exponent", "1e10");
        }
    }

    /// <summary>
    /// Other values of the right type. The harmless ones change what the signer vouched for, and only
    /// the key holder can sign: another <c>sub</c>, <c>jti</c>, <c>key_id</c> or <c>rev</c> is simply
    /// another genuine token (the user grain still judges key and generation), a shorter life or an
    /// earlier <c>nbf</c> narrows nothing, and a future <c>iat</c>/<c>nbf</c> inside the 30 s skew is the
    /// skew doing its job. Everything that widens trust or names something else is refused.
    /// </summary>
    private static IEnumerable<(string Raw, bool Harmless)> OtherValues(string name) => name switch
    {
        "alg" => [(Text("RS256"), false), (Text("HS256"), false), (Text("none"), false), (Text("es256"), false), (Text("ES384"), false), (Text("PS256"), false), (Text("EdDSA"), false)],
        "typ" => [(Text("JWT"), false), (Text("at+JWT"), false), (Text("application/at+jwt"), false), (Text(""), false)],
        "kid" => [(Text("unknown-kid"), false), (Text(TestKeys.RsaKid), false), (Text(""), false)],
        "iss" => [(Text("bastion-evil"), false), (Text("Bastion"), false), (Text(""), false)],
        "aud" => [(Text("bastion-cluster"), false), (Text("bastion-api "), false), (Text(""), false)],
        "sub" => [(Text("someone-else"), true), (Text(""), false)],
        "jti" => [(Text("another-id"), true), (Text(""), false)],
        "key_id" => [(Text("key-2"), true), (Text(""), false)],
        "rev" => [("4", true), ("0", true), ("-1", false)],
        "iat" => [($"{Now + 29}", true), ($"{Now + 31}", false), ($"{Now - 1}", false), ($"{Now + 901}", false), ("0", false)],
        "nbf" => [($"{Now + 29}", true), ($"{Now + 31}", false), ($"{Now - 60}", true), ($"{Now + 901}", false), ("0", false)],
        "exp" => [($"{Now + 60}", true), ($"{Now + 901}", false), ($"{Now - 31}", false), ($"{Now - 1000}", false), ("0", false)],
        _ => [],
    };
}
