using System.Net;
using System.Text.Json;
using Bastion.Access;
using Bastion.Security;
using Bastion.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Api;

/// <summary><c>/admin/keys</c>: KEK rotation through a running silo, alone and under concurrent writes.</summary>
[Collection(SiloCollection.Name)]
public sealed class KeysApiTests(SiloFixture fixture)
{
    [Fact]
    public async Task Rotate_Rewrap_Retire_ThroughHttp_WithProgressConflictsAndAudit()
    {
        var (database, dataDirectory) = await fixture.CreateDatabaseAsync();
        await using var silo = await TestSilo.StartAsync(database, dataDirectory);
        var admin = silo.AdminKey;
        var user = await silo.CreateUserWithKeyAsync("keys-" + Guid.NewGuid().ToString("N"), Roles.User);

        var before = await GetJsonAsync(silo, "/admin/keys", admin);
        Assert.Equal(1, before.GetProperty("data")[0].GetProperty("version").GetInt32());
        Assert.True(before.GetProperty("data")[0].GetProperty("current").GetBoolean());
        Assert.True(before.GetProperty("data")[0].GetProperty("data_keys").GetInt64() >= 2); // system + the user

        DevelopmentKeyring.AddKek(Path.Combine(dataDirectory, "keyring.json"));
        await AssertConflictAsync(silo, "/admin/keys/kek/1/retire", admin, "still wraps");
        await AssertConflictAsync(silo, "/admin/keys/kek/2/retire", admin, "current version");
        using (var forbidden = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/keys/rewrap", user)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        using (var started = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/keys/rewrap", admin)))
        {
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            Assert.Equal("/admin/keys/rewrap", started.Headers.Location!.OriginalString);
        }

        await silo.Services.GetRequiredService<RewrapJob>().Completion;
        var status = await GetJsonAsync(silo, "/admin/keys/rewrap", admin);
        var after = await GetJsonAsync(silo, "/admin/keys", admin);
        using var retired = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/keys/kek/1/retire", admin));
        using var again = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/keys/kek/1/retire", admin));
        using var invalid = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/keys/kek/one/retire", admin));
        var audit = await GetJsonAsync(silo, "/admin/audit", admin);

        Assert.Equal("done", status.GetProperty("state").GetString());
        Assert.Equal(2, status.GetProperty("current_kek_version").GetInt32());
        Assert.True(status.GetProperty("total").GetInt64() >= 2);
        Assert.Equal(status.GetProperty("total").GetInt64(), status.GetProperty("done").GetInt64());
        Assert.Equal(0, status.GetProperty("remaining").GetInt64());
        Assert.Equal(0, after.GetProperty("data")[0].GetProperty("data_keys").GetInt64());
        Assert.Equal(HttpStatusCode.NoContent, retired.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        var actions = audit.GetProperty("data").EnumerateArray().Select(entry => entry.GetProperty("action").GetString()).ToList();
        Assert.Contains("keys.rewrap", actions);
        Assert.Contains("keys.retire-kek", actions);
        using var me = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", user));
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
    }

    [Fact]
    public async Task KekRotationUnderConcurrentLoad_LosesNothing()
    {
        const int clients = 6;
        const int usersPerClient = 5;
        var (database, dataDirectory) = await fixture.CreateDatabaseAsync();
        var run = Guid.NewGuid().ToString("N")[..8];
        var created = new System.Collections.Concurrent.ConcurrentBag<(string Id, string FirstKey)>();
        string admin;
        await using (var silo = await TestSilo.StartAsync(database, dataDirectory))
        {
            admin = silo.AdminKey;
            var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var done = 0;
            var writers = Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
            {
                for (var i = 0; i < usersPerClient; i++)
                {
                    var id = $"load-{run}-{client}-{i}";
                    created.Add((id, await WriteUserAsync(silo, admin, id)));
                    if (Interlocked.Increment(ref done) == clients * usersPerClient / 2)
                    {
                        halfway.SetResult();
                    }
                }
            })).ToList();

            // Rotate and re-wrap while half of the writes are still to come.
            await halfway.Task;
            DevelopmentKeyring.AddKek(Path.Combine(dataDirectory, "keyring.json"));
            using (var started = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/keys/rewrap", admin)))
            {
                Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            }

            await Task.WhenAll(writers);
            await silo.Services.GetRequiredService<RewrapJob>().Completion;
            var status = await GetJsonAsync(silo, "/admin/keys/rewrap", admin);
            Assert.Equal("done", status.GetProperty("state").GetString());
            Assert.Equal(0, status.GetProperty("remaining").GetInt64());
            using var retired = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/keys/kek/1/retire", admin));
            Assert.Equal(HttpStatusCode.NoContent, retired.StatusCode);
        }

        // A fresh silo whose keyring no longer has version 1 reads everything from PostgreSQL.
        await using var restarted = await TestSilo.StartAsync(database, dataDirectory);
        Assert.Equal(clients * usersPerClient, created.Count);
        foreach (var (id, firstKey) in created)
        {
            var profile = await GetJsonAsync(restarted, $"/admin/users/{id}", admin);
            Assert.Equal([Roles.User, Roles.DataScientist], profile.GetProperty("roles").EnumerateArray().Select(role => role.GetString()));
            Assert.Equal(
                ["first", "second"],
                profile.GetProperty("api_keys").EnumerateArray().Select(key => key.GetProperty("label").GetString()).Order(StringComparer.Ordinal));
            using var me = await restarted.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", firstKey));
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        var keys = await GetJsonAsync(restarted, "/admin/keys", admin);
        Assert.All(
            keys.GetProperty("data").EnumerateArray().Where(kek => kek.GetProperty("version").GetInt32() == 1),
            kek => Assert.Equal(0, kek.GetProperty("data_keys").GetInt64()));
    }

    // Every write a user's state takes: create, two keys, limits, roles.
    private static async Task<string> WriteUserAsync(TestSilo silo, string admin, string id)
    {
        await SendAsync(silo, HttpMethod.Post, "/admin/users", admin, new { id, roles = new[] { Roles.User } }, HttpStatusCode.Created);
        using var first = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{id}/api-keys", admin, new { label = "first" }));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        using var firstJson = JsonDocument.Parse(await first.Content.ReadAsStringAsync());
        await SendAsync(silo, HttpMethod.Post, $"/admin/users/{id}/api-keys", admin, new { label = "second" }, HttpStatusCode.Created);
        await SendAsync(silo, HttpMethod.Put, $"/admin/users/{id}/limits", admin, new { concurrency = 3 }, HttpStatusCode.OK);
        await SendAsync(silo, HttpMethod.Put, $"/admin/users/{id}/roles", admin, new { roles = new[] { Roles.User, Roles.DataScientist } }, HttpStatusCode.OK);
        return firstJson.RootElement.GetProperty("api_key").GetString()!;
    }

    private static async Task SendAsync(TestSilo silo, HttpMethod method, string path, string bearer, object body, HttpStatusCode expected)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(method, path, bearer, body));
        Assert.Equal(expected, response.StatusCode);
    }

    private static async Task<JsonElement> GetJsonAsync(TestSilo silo, string path, string bearer)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, path, bearer));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.Clone();
    }

    private static async Task AssertConflictAsync(TestSilo silo, string path, string bearer, string detail)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, path, bearer));
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("urn:bastion:problem:conflict", json.RootElement.GetProperty("type").GetString());
        Assert.Contains(detail, json.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(json.RootElement.TryGetProperty("traceId", out _));
    }
}
