using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Api;

/// <summary>Administrative changes take effect on the very next request.</summary>
[Collection(SiloCollection.Name)]
public sealed class AdminApiTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task Suspend_RefusesKeyAndToken_ResumeRestoresBoth()
    {
        var id = NewId("suspend");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        var token = await ExchangeAsync(apiKey);

        Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Post, $"/admin/users/{id}/suspend"));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/me", apiKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/me", token));
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(HttpMethod.Post, "/v1/auth/token", null, new { api_key = apiKey })).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Post, $"/admin/users/{id}/resume"));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(HttpMethod.Get, "/v1/me", apiKey));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(HttpMethod.Get, "/v1/me", token));
    }

    [Fact]
    public async Task RevokeTokens_RefusesEarlierTokensButNotTheKeyOrNewTokens()
    {
        var id = NewId("revoke");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        var before = await ExchangeAsync(apiKey);

        Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Post, $"/admin/users/{id}/revoke-tokens"));

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/me", before));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(HttpMethod.Get, "/v1/me", apiKey));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(HttpMethod.Get, "/v1/me", await ExchangeAsync(apiKey)));
    }

    [Fact]
    public async Task RevokeApiKey_RefusesTheKeyAndTokensExchangedForIt()
    {
        var id = NewId("revoke-key");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        var token = await ExchangeAsync(apiKey);
        var keyId = apiKey.Split('_')[1];

        Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Delete, $"/admin/users/{id}/api-keys/{keyId}"));

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/me", apiKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/me", token));
        Assert.Equal(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Delete, $"/admin/users/{id}/api-keys/000000000000000000000000"));
    }

    [Fact]
    public async Task Roles_Changed_TakeEffectOnTheNextRequest()
    {
        var id = NewId("promote");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(HttpMethod.Get, "/admin/users", apiKey));

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Put, $"/admin/users/{id}/roles", Silo.AdminKey, new { roles = new[] { "admin" } })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(HttpMethod.Get, "/admin/users", apiKey));

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Put, $"/admin/users/{id}/roles", Silo.AdminKey, new { roles = new[] { "user" } })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(HttpMethod.Get, "/admin/users", apiKey));
    }

    [Fact]
    public async Task DeleteUser_RemovesThemAndTheirKeys()
    {
        var id = NewId("delete");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");

        Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Delete, $"/admin/users/{id}"));

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/me", apiKey));
        Assert.Equal(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Get, $"/admin/users/{id}"));
        Assert.Equal(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Delete, $"/admin/users/{id}"));
    }

    [Fact]
    public async Task DeleteUser_DestroysTheirDataKey()
    {
        var id = NewId("erase");
        await Silo.CreateUserWithKeyAsync(id, "user");
        var scope = Bastion.Storage.DataKeyScope.ForUser(Silo.Services.GetRequiredService<Bastion.Security.Pseudonymizer>().Pseudonymize(id));
        var dataKeys = Silo.Services.GetRequiredService<Bastion.Storage.DataKeyStore>();
        var key = await dataKeys.GetCurrentAsync(scope, CancellationToken.None);

        Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Delete, $"/admin/users/{id}"));

        await Assert.ThrowsAsync<Bastion.Storage.DataKeyErasedException>(() => dataKeys.FindAsync(scope, key.Id, CancellationToken.None));
    }

    [Fact]
    public async Task DeleteMe_NeedsTheApiKeyNotAnAccessToken()
    {
        var id = NewId("me");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");

        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(HttpMethod.Delete, "/v1/me", await ExchangeAsync(apiKey)));
        Assert.Equal(HttpStatusCode.NoContent, await StatusAsync(HttpMethod.Delete, "/v1/me", apiKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/me", apiKey));
    }

    [Fact]
    public async Task DeleteMe_DestroysTheDataKey_AndIsAudited()
    {
        var id = NewId("self-erase");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        var pseudonym = Silo.Services.GetRequiredService<Bastion.Security.Pseudonymizer>().Pseudonymize(id);
        var scope = Bastion.Storage.DataKeyScope.ForUser(pseudonym);
        var dataKeys = Silo.Services.GetRequiredService<Bastion.Storage.DataKeyStore>();
        var key = await dataKeys.GetCurrentAsync(scope, CancellationToken.None);

        Assert.Equal(HttpStatusCode.NoContent, await StatusAsync(HttpMethod.Delete, "/v1/me", apiKey));

        await Assert.ThrowsAsync<Bastion.Storage.DataKeyErasedException>(() => dataKeys.FindAsync(scope, key.Id, CancellationToken.None));
        using var audit = await SendAsync(HttpMethod.Get, "/admin/audit?limit=1000", Silo.AdminKey);
        using var json = JsonDocument.Parse(await audit.Content.ReadAsStringAsync());
        var entry = Assert.Single(json.RootElement.GetProperty("data").EnumerateArray(), e => e.GetProperty("actor").GetString() == pseudonym);
        Assert.Equal("user.delete", entry.GetProperty("action").GetString());
        Assert.Equal(pseudonym, entry.GetProperty("target").GetString());
        Assert.Equal("204", entry.GetProperty("outcome").GetString());

        // The erasure itself, recorded once the key was destroyed: what `audit redestroy-erased` reads after a key-store restore.
        var erasure = Assert.Single(json.RootElement.GetProperty("data").EnumerateArray(), e => e.GetProperty("action").GetString() == "user.erase" && e.GetProperty("target").GetString() == pseudonym);
        Assert.Equal("ok", erasure.GetProperty("outcome").GetString());
    }

    [Fact]
    public async Task AnAdminChangeRefusedForLackOfRole_IsAuditedWithTheCallerAsActor()
    {
        var id = NewId("not-an-admin");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        var pseudonym = Silo.Services.GetRequiredService<Bastion.Security.Pseudonymizer>().Pseudonymize(id);
        var victim = NewId("victim");

        using (var refused = await SendAsync(HttpMethod.Post, $"/admin/users/{victim}/api-keys", apiKey, new { label = "stolen" }))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }

        using var audit = await SendAsync(HttpMethod.Get, "/admin/audit?limit=1000", Silo.AdminKey);
        using var json = JsonDocument.Parse(await audit.Content.ReadAsStringAsync());
        var entry = Assert.Single(json.RootElement.GetProperty("data").EnumerateArray(), e => e.GetProperty("actor").GetString() == pseudonym);
        Assert.Equal("api-key.create", entry.GetProperty("action").GetString());
        Assert.Equal("403", entry.GetProperty("outcome").GetString());
        Assert.Equal(Silo.Services.GetRequiredService<Bastion.Security.Pseudonymizer>().Pseudonymize(victim), entry.GetProperty("target").GetString());
    }

    [Fact]
    public async Task LastAdmin_CannotBeDemotedOrDeleted()
    {
        // A fresh node, so that its bootstrap admin really is the only admin.
        var (database, directory) = await fixture.CreateDatabaseAsync();
        await using var silo = await TestSilo.StartAsync(database, directory);
        var admin = silo.AdminKey;

        using var demote = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, "/admin/users/admin/roles", admin, new { roles = new[] { "user" } }));
        using var delete = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, "/admin/users/admin", admin));
        using var deleteMe = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, "/v1/me", admin));

        Assert.Equal(HttpStatusCode.Conflict, demote.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, delete.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, deleteMe.StatusCode);

        // With a second admin, the first may go.
        var second = await silo.CreateUserWithKeyAsync("second-admin", "admin");
        using var demoted = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, "/admin/users/admin/roles", second, new { roles = new[] { "user" } }));
        Assert.Equal(HttpStatusCode.OK, demoted.StatusCode);
    }

    [Fact]
    public async Task ListUsers_PagesInIdOrder_AndAuditRecordsTheChanges()
    {
        var prefix = NewId("list");
        foreach (var suffix in new[] { "c", "a", "b" })
        {
            await Silo.CreateUserWithKeyAsync($"{prefix}-{suffix}", "user");
        }

        using var page = await SendAsync(HttpMethod.Get, $"/admin/users?after={prefix}&limit=2", Silo.AdminKey);
        using var json = JsonDocument.Parse(await page.Content.ReadAsStringAsync());
        var ids = json.RootElement.GetProperty("data").EnumerateArray().Select(u => u.GetProperty("id").GetString()).ToList();
        Assert.Equal([$"{prefix}-a", $"{prefix}-b"], ids);
        Assert.Equal($"{prefix}-b", json.RootElement.GetProperty("next").GetString());

        using var audit = await SendAsync(HttpMethod.Get, "/admin/audit?limit=1000", Silo.AdminKey);
        var auditText = await audit.Content.ReadAsStringAsync();
        Assert.Contains("\"user.create\"", auditText, StringComparison.Ordinal);
        Assert.DoesNotContain(prefix, auditText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Suspension_CancelsARunningGeneration()
    {
        // ~1000 decode steps (this prompt meets no end-of-text) usually outlast the suspension; on a
        // starved machine the generation can still win the race, so a lost race is retried, never
        // counted as a pass.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var id = NewId("cancel");
            var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
            var completion = SendAsync(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Go", max_tokens = 1000, temperature = 0 });
            while (await OpenRequestsAsync(id) == 0 && !completion.IsCompleted)
            {
            }

            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Post, $"/admin/users/{id}/suspend"));
            using var response = await completion;
            using var profile = JsonDocument.Parse(await (await SendAsync(HttpMethod.Get, $"/admin/users/{id}", Silo.AdminKey)).Content.ReadAsStringAsync());
            var generated = profile.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt64();
            if (generated == 1000)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                continue;
            }

            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.InRange(generated, 0, 999);
            return;
        }

        Assert.Fail("every generation finished before its user could be suspended");
    }

    private async Task<long> OpenRequestsAsync(string id)
    {
        using var response = await SendAsync(HttpMethod.Get, $"/admin/users/{id}", Silo.AdminKey);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("requests").GetInt64();
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    private async Task<string> ExchangeAsync(string apiKey)
    {
        using var response = await SendAsync(HttpMethod.Post, "/v1/auth/token", null, new { api_key = apiKey });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("access_token").GetString()!;
    }

    private Task<HttpStatusCode> AdminAsync(HttpMethod method, string path) => StatusAsync(method, path, Silo.AdminKey);

    private async Task<HttpStatusCode> StatusAsync(HttpMethod method, string path, string bearer)
    {
        using var response = await SendAsync(method, path, bearer);
        return response.StatusCode;
    }

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? bearer, object? body = null) =>
        Silo.Http.SendAsync(TestSilo.Request(method, path, bearer, body));
}
