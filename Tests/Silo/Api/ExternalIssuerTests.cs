using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// Tokens of a configured external issuer map (iss, sub) to a user an admin provisioned; the
/// issuer's role claims count for nothing.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class ExternalIssuerTests(SiloFixture fixture)
{
    private const string Issuer = "https://idp.example.test/";
    private const string Audience = "bastion";

    [Fact]
    public async Task ExternalToken_ForAProvisionedUser_WorksWithTheUsersRolesOnly()
    {
        using var rsa = RSA.Create(2048);
        var signingKey = new RsaSecurityKey(rsa) { KeyId = "idp-1" };
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var jwks = Path.Combine(directory, "idp-jwks.json");
        var publicKey = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(false)) { KeyId = "idp-1" });
        await File.WriteAllTextAsync(jwks, JsonSerializer.Serialize(new { keys = new[] { new { kty = "RSA", kid = publicKey.Kid, use = "sig", n = publicKey.N, e = publicKey.E } } }));
        await using var silo = await TestSilo.StartAsync(database, directory, new Dictionary<string, string?>
        {
            ["Bastion:Auth:ExternalIssuers:0:Name"] = "corp",
            ["Bastion:Auth:ExternalIssuers:0:Issuer"] = Issuer,
            ["Bastion:Auth:ExternalIssuers:0:Audience"] = Audience,
            ["Bastion:Auth:ExternalIssuers:0:JwksFile"] = jwks,
        });
        using var provisioned = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", silo.AdminKey, new { id = "corp:alice", roles = new[] { "user" } }));
        Assert.Equal(HttpStatusCode.Created, provisioned.StatusCode);

        var alice = Token(signingKey, "alice");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(silo, HttpMethod.Get, "/v1/models", alice));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(silo, HttpMethod.Get, "/admin/users", alice));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(silo, HttpMethod.Get, "/v1/models", Token(signingKey, "mallory")));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(silo, HttpMethod.Get, "/v1/models", Token(signingKey, "alice", audience: "someone-else")));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(silo, HttpMethod.Get, "/v1/models", Token(new RsaSecurityKey(RSA.Create(2048)) { KeyId = "idp-1" }, "alice")));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(silo, HttpMethod.Get, "/v1/models", Token(signingKey, "alice", expires: TimeSpan.FromMinutes(-5))));

        Assert.Equal(HttpStatusCode.NoContent, await StatusAsync(silo, HttpMethod.Post, "/admin/users/corp:alice/revoke-tokens", silo.AdminKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(silo, HttpMethod.Get, "/v1/models", alice));
    }

    private static string Token(SecurityKey key, string subject, string audience = Audience, TimeSpan? expires = null)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            IssuedAt = now.AddMinutes(-10),
            NotBefore = now.AddMinutes(-10),
            Expires = now + (expires ?? TimeSpan.FromMinutes(5)),
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
            Claims = new Dictionary<string, object> { ["sub"] = subject, ["roles"] = new[] { "admin" } },
        });
    }

    private static async Task<HttpStatusCode> StatusAsync(TestSilo silo, HttpMethod method, string path, string bearer)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(method, path, bearer));
        return response.StatusCode;
    }
}
