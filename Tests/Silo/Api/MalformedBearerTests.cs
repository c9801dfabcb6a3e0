using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// Garbage in the bearer, with an external issuer configured so every token reader sees it: always the standard
/// 401 problem body, never a 500.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class MalformedBearerTests(SiloFixture fixture)
{
    public static readonly TheoryData<string, string> Bearers = new()
    {
        { "one character", "x" },
        { "three empty parts", ".." },
        { "four parts", "a.b.c.d" },
        { "two parts", "eyJhbGciOiJSUzI1NiJ9.e30" },
        { "not base64url", "eyJhbGciOiJSUzI1NiJ9.!!!.sig" },
        { "base64 padding", "eyJhbGciOiJSUzI1NiJ9==.e30=.c2ln" },
        { "header not JSON", "bm90IGpzb24.e30.c2ln" },
        { "header a JSON array", "W10.W10.c2ln" },
        { "header alg a number", "eyJhbGciOjF9.e30.c2ln" },
        { "exp a string", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOiJzb29uIn0.c2ln" },
        { "iss an object", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOnt9fQ.c2ln" },
        { "truncated JSON", "eyJhbGciOiJSUzI1.eyJpc3MiOiJ.c2ln" },
        { "api-key prefix, garbage", "bst_" },
        { "api-key prefix, bad parts", "bst_zz_!!" },
        { "percent and quotes", "%00\"'<>" },
        { "long", new string('A', 7_000) },
        { "long, dotted", string.Join('.', Enumerable.Repeat(new string('A', 2_000), 3)) },
    };

    [Fact]
    public async Task MalformedBearers_AreAllThe401ProblemNeverA500()
    {
        using var rsa = RSA.Create(2048);
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var jwks = Path.Combine(directory, "idp-jwks.json");
        var publicKey = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(false)) { KeyId = "idp-1" });
        await File.WriteAllTextAsync(jwks, JsonSerializer.Serialize(new { keys = new[] { new { kty = "RSA", kid = publicKey.Kid, use = "sig", n = publicKey.N, e = publicKey.E } } }));
        await using var silo = await TestSilo.StartAsync(database, directory, new Dictionary<string, string?>
        {
            ["Bastion:Auth:ExternalIssuers:0:Name"] = "corp",
            ["Bastion:Auth:ExternalIssuers:0:Issuer"] = "https://idp.example.test/",
            ["Bastion:Auth:ExternalIssuers:0:Audience"] = "bastion",
            ["Bastion:Auth:ExternalIssuers:0:JwksFile"] = jwks,
        });
        var expected = await UnauthorizedBodyAsync(silo, "Bearer well.formed.butunknown");

        foreach (var row in Bearers)
        {
            var (name, bearer) = ((string)row[0], (string)row[1]);
            Assert.True(expected == await UnauthorizedBodyAsync(silo, "Bearer " + bearer), $"bearer '{name}' did not get the standard 401 problem");
        }

        // Outside the token itself: a bare scheme, a doubled scheme, a megabyte.
        foreach (var header in new[] { "Bearer", "Bearer ", "Bearer Bearer x", "Basic Zm9vOmJhcg==" })
        {
            Assert.True(expected == await UnauthorizedBodyAsync(silo, header), $"header '{header}' did not get the standard 401 problem");
        }
    }

    /// <summary>The problem body of a 401 without its <c>traceId</c>; anything but a 401 problem fails the test.</summary>
    private static async Task<string> UnauthorizedBodyAsync(TestSilo silo, string authorization)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        Assert.True(request.Headers.TryAddWithoutValidation("Authorization", authorization));
        using var response = await silo.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"'{authorization[..Math.Min(40, authorization.Length)]}': {(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(text)!;
        Assert.True(body.Remove("traceId"));
        return JsonSerializer.Serialize(body);
    }
}
