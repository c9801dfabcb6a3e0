using System.Net;
using System.Text.Json;
using Bastion.Audit;
using Bastion.Cluster;
using Bastion.Tests.Silo.Cluster;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Audit;

/// <summary>
/// The emergency switches an incident responder flips: inference stops (503 inference-stopped, nothing charged), and
/// changes that grant access are refused (409 changes-frozen) through HTTP and the service facade alike, while
/// containment (suspend, revoke) keeps working. Each flip is audited with the values it set.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class EmergencySwitchTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    /// <summary>The routes that create or widen access, written down here: each must be refused while changes are frozen.</summary>
    private static readonly (string Method, string Path, object? Body)[] Granting =
    [
        ("POST", "/admin/users", new { id = "frozen-new-user", roles = new[] { "user" } }),
        ("PUT", "/admin/users/{id}/roles", new { roles = new[] { "admin" } }),
        ("PUT", "/admin/users/{id}/limits", new { concurrency = 50 }),
        ("POST", "/admin/users/{id}/api-keys", new { label = "attacker" }),
        ("POST", "/admin/users/{id}/resume", null),
        ("DELETE", "/admin/users/{id}", null),
    ];

    [Fact]
    public async Task StopInference_AndFreezeChanges_AreHonouredAtEveryFrontDoor_AndAudited()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var operator_ = ServiceKeyPair.Create(directory, "svc-emergency-ops");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(operator_));
        await silo.CreateUserWithKeyAsync(operator_.Name, "admin");
        await using var ops = await ServiceClientHost.StartAsync(silo, operator_);
        var userId = "emergency-" + Guid.NewGuid().ToString("N");
        var apiKey = await silo.CreateUserWithKeyAsync(userId, "user");
        var completion = new { model = Model, prompt = "Hello", max_tokens = 2 };

        // Inference stopped: refused before admission, so nothing is counted against the user.
        Assert.Equal(HttpStatusCode.OK, await SetAsync(silo, inferenceStopped: true, changesFrozen: false));
        using (var refused = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, completion)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("urn:bastion:problem:inference-stopped", await ProblemTypeAsync(refused));
            Assert.NotNull(refused.Headers.RetryAfter);
        }

        using (var me = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", apiKey)))
        {
            Assert.Equal(0, JsonDocument.Parse(await me.Content.ReadAsStringAsync()).RootElement.GetProperty("requests").GetInt64());
        }

        // Changes frozen, inference running again.
        Assert.Equal(HttpStatusCode.OK, await SetAsync(silo, inferenceStopped: false, changesFrozen: true));
        using (var served = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, completion)))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        foreach (var (method, path, body) in Granting)
        {
            using var response = await silo.Http.SendAsync(TestSilo.Request(new HttpMethod(method), path.Replace("{id}", userId, StringComparison.Ordinal), silo.AdminKey, body));
            Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{method} {path}: {response.StatusCode}");
            Assert.Equal("urn:bastion:problem:changes-frozen", await ProblemTypeAsync(response));
        }

        using (var selfErase = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, "/v1/me", apiKey)))
        {
            Assert.Equal(HttpStatusCode.Conflict, selfErase.StatusCode);
        }

        var frozen = await Assert.ThrowsAsync<ServiceRefusedException>(() => ops.Client.CreateUserAsync("frozen-by-facade", ["user"]));
        Assert.Equal(ServiceRefusal.Conflict, frozen.Reason);
        Assert.Equal(ServiceRefusal.Conflict, (await Assert.ThrowsAsync<ServiceRefusedException>(() => ops.Client.IssueApiKeyAsync(userId, "attacker"))).Reason);

        // Containment still works: suspend through HTTP, revoke tokens through the facade; the suspended key is refused.
        using (var suspend = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{userId}/suspend", silo.AdminKey)))
        {
            Assert.Equal(HttpStatusCode.NoContent, suspend.StatusCode);
        }

        await ops.Client.RevokeTokensAsync(userId);
        using (var afterSuspend = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", apiKey)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, afterSuspend.StatusCode);
        }

        // Both switches are required: leaving one out changes nothing.
        using (var partial = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, "/admin/emergency", silo.AdminKey, new { changes_frozen = false })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, partial.StatusCode);
        }

        using (var state = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/admin/emergency", silo.AdminKey)))
        {
            Assert.True(JsonDocument.Parse(await state.Content.ReadAsStringAsync()).RootElement.GetProperty("changes_frozen").GetBoolean());
        }

        Assert.Equal(HttpStatusCode.OK, await SetAsync(silo, inferenceStopped: false, changesFrozen: false));
        await ops.Client.CreateUserAsync("thawed-" + Guid.NewGuid().ToString("N"), ["user"]);

        // Every flip is in the audit trail with what it set, and so is every refusal.
        var records = (await silo.Services.GetRequiredService<AuditLedger>().ReadNewestAsync(200, CancellationToken.None)).Select(r => r.Record).ToList();
        var flips = records.Where(r => r.Action == "emergency.set" && r.Outcome == "200").Reverse().ToList();
        Assert.Equal(
            [("true", "false"), ("false", "true"), ("false", "false")],
            flips.Select(r => (r.Detail!["inference_stopped"], r.Detail["changes_frozen"])));
        Assert.Contains(records, r => r.Action == "api-key.create" && r.Outcome == "409");
        Assert.Contains(records, r => r.Action == "user.create" && r.Outcome == "409");
    }

    private static async Task<HttpStatusCode> SetAsync(TestSilo silo, bool inferenceStopped, bool changesFrozen)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(
            HttpMethod.Put, "/admin/emergency", silo.AdminKey, new { inference_stopped = inferenceStopped, changes_frozen = changesFrozen }));
        return response.StatusCode;
    }

    private static async Task<string?> ProblemTypeAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("type").GetString();
}
