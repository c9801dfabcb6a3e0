using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bastion.Security;
using Bastion.Tests.Silo.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using static Bastion.Tests.Silo.Security.ForgedToken;

namespace Bastion.Tests.Silo.Api;

/// <summary>Forged access tokens at the edge: each one gets the same 401 as no credential at all.</summary>
[Collection(SiloCollection.Name)]
public sealed class ForgedAccessTokenTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task ForgedTokens_AllGetTheIdenticalProblemApartFromTraceId()
    {
        var signing = Silo.Services.GetRequiredService<IKeyProvider>().SigningCredentials.Key;
        var key = ((ECDsaSecurityKey)signing).ECDsa;
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        ForgedToken Valid() => ForgedToken.Valid(signing.KeyId, now);
        using var foreign = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var genuine = await ExchangeAsync();
        var parts = genuine.Split('.');
        var tamperedPayload = Valid().Set("payload", "sub", Text("someone-else")).SigningInput.Split('.')[1];
        var expired = Valid().Set("payload", "iat", $"{now - 1000}").Set("payload", "nbf", $"{now - 1000}").Set("payload", "exp", $"{now - 100}");
        var duplicated = Valid();
        duplicated.Payload.Add(Member("sub", Text("someone-else")));

        string?[] bearers =
        [
            null,
            Valid().Set("header", "alg", Text("none")).Unsigned(),
            Valid().Set("header", "alg", Text("HS256")).SignHmac("HS256", Encoding.ASCII.GetBytes(key.ExportSubjectPublicKeyInfoPem())),
            $"{parts[0]}.{parts[1]}.",
            $"{parts[0]}.{tamperedPayload}.{parts[2]}",
            Valid().SignEs256(foreign),
            Valid().Set("header", "kid", Text("../../keyring.json")).SignEs256(key),
            Valid().Set("header", "jku", Text("https://attacker.example/jwks.json")).SignEs256(key),
            Valid().Set("header", "crit", "[\"exp\"]").SignEs256(key),
            Valid().Set("payload", "aud", Text("bastion-cluster")).SignEs256(key),
            expired.SignEs256(key),
            duplicated.SignEs256(key),
            Valid().Set("payload", "pad", Text(new string('p', 9000))).SignEs256(key),
            $"{parts[0]}.{parts[1]}.{parts[2]}.{parts[1]}.{parts[2]}",
        ];

        await Silo.AssertIdenticalUnauthorizedAsync(bearers);

        // The same request with the genuine token goes through, so the refusals above are the forgeries'.
        using var accepted = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", genuine, new { model = Model, prompt = "x", max_tokens = 1 }));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    private async Task<string> ExchangeAsync()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("forged-" + Guid.NewGuid().ToString("N"), "user");
        using var exchanged = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/auth/token", null, new { api_key = apiKey }));
        Assert.Equal(HttpStatusCode.OK, exchanged.StatusCode);
        using var json = JsonDocument.Parse(await exchanged.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("access_token").GetString()!;
    }
}
