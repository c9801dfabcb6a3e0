using System.Net;
using System.Text.Json;
using Bastion.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Tests.Silo.Api;

[Collection(SiloCollection.Name)]
public sealed class JwksApiTests(SiloFixture fixture)
{
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task Jwks_IsServedAnonymously_WithPublicKeysOnly()
    {
        using var response = await Silo.Http.GetAsync("/.well-known/jwks.json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var keys = json.RootElement.GetProperty("keys").EnumerateArray().ToList();
        var signingKid = Silo.Services.GetRequiredService<IKeyProvider>().SigningCredentials.Key.KeyId;
        Assert.Contains(keys, key => key.GetProperty("kid").GetString() == signingKid);
        foreach (var key in keys)
        {
            Assert.Equal("EC", key.GetProperty("kty").GetString());
            Assert.Equal("P-256", key.GetProperty("crv").GetString());
            Assert.Equal("ES256", key.GetProperty("alg").GetString());
            Assert.Equal("sig", key.GetProperty("use").GetString());
            Assert.True(key.TryGetProperty("x", out _) && key.TryGetProperty("y", out _));
            foreach (var secret in new[] { "d", "p", "q", "dp", "dq", "qi", "k", "oth" })
            {
                Assert.False(key.TryGetProperty(secret, out _), $"the JWKS carries the private member {secret}");
            }
        }
    }

    [Fact]
    public async Task TokenIssuedByTheSilo_VerifiesWithTheServedJwks()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("jwks-" + Guid.NewGuid().ToString("N"), "user");
        using var exchanged = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/auth/token", null, new { api_key = apiKey }));
        using var tokenJson = JsonDocument.Parse(await exchanged.Content.ReadAsStringAsync());
        var token = tokenJson.RootElement.GetProperty("access_token").GetString()!;
        var jwks = new JsonWebKeySet(await Silo.Http.GetStringAsync("/.well-known/jwks.json"));

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidIssuer = "bastion",
            ValidAudience = "bastion-api",
            ValidTypes = ["at+jwt"],
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        });

        Assert.True(result.IsValid, result.Exception?.Message);
    }
}
