using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Bastion.Cluster;
using Bastion.Generation;
using Bastion.Security;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// "Role changes, suspension and revocation take effect on the very next call, cluster-wide": two silos, each with its
/// own HTTP edge and gateway; every admin action goes through silo A, and the very next request through silo B (no
/// waiting, no retry) must already be refused. Each credential is used at B before the action, so anything B might
/// remember about it (a verified-token cache, a warm grain reference) is warm when the action lands.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class RevocationAcrossSilosTests(SiloFixture fixture, ITestOutputHelper output)
{
    private const string Model = "bastion-tiny-gpt2";

    [Fact]
    public async Task ApiKeyRevokedTokensRevokedOrUserSuspended_ThroughSiloA_AreRefusedAtSiloBOnTheNextRequest()
    {
        var (a, b, _) = await StartClusterAsync();
        try
        {
            // An API key revoked through A: the key and an access token exchanged for it are refused at B; the user's
            // other key still works, so the refusal is the key's, not the user's.
            var keyUser = NewId("revoked-key");
            var revokedKey = await a.CreateUserWithKeyAsync(keyUser, "user");
            var otherKey = await IssueKeyAsync(a, keyUser);
            var tokenOfRevokedKey = await ExchangeAsync(b, revokedKey);
            await AssertServedAtAsync(b, revokedKey);
            await AssertServedAtAsync(b, tokenOfRevokedKey);
            await LogHostAsync(a, keyUser);

            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(a, HttpMethod.Delete, $"/admin/users/{keyUser}/api-keys/{KeyIdOf(revokedKey)}"));

            await AssertRefusedAtAsync(b, revokedKey, tokenOfRevokedKey);
            await AssertServedAtAsync(b, otherKey);

            // revoke-tokens through A: an access token issued (at B) before it is refused at B; the API key itself is not
            // revoked, and a token exchanged after the revocation works.
            var tokenUser = NewId("revoked-tokens");
            var tokenUserKey = await a.CreateUserWithKeyAsync(tokenUser, "user");
            var earlierToken = await ExchangeAsync(b, tokenUserKey);
            await AssertServedAtAsync(b, earlierToken);
            await LogHostAsync(a, tokenUser);

            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(a, HttpMethod.Post, $"/admin/users/{tokenUser}/revoke-tokens"));

            await AssertRefusedAtAsync(b, earlierToken);
            await AssertServedAtAsync(b, tokenUserKey);
            await AssertServedAtAsync(b, await ExchangeAsync(b, tokenUserKey));

            // Suspended through A: refused at B with the API key and with a token issued before; resumed through A, both
            // work again at B.
            var suspendedUser = NewId("suspended");
            var suspendedKey = await a.CreateUserWithKeyAsync(suspendedUser, "user");
            var suspendedToken = await ExchangeAsync(b, suspendedKey);
            await AssertServedAtAsync(b, suspendedKey);
            await AssertServedAtAsync(b, suspendedToken);
            await LogHostAsync(a, suspendedUser);

            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(a, HttpMethod.Post, $"/admin/users/{suspendedUser}/suspend"));

            await AssertRefusedAtAsync(b, suspendedKey, suspendedToken);

            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(a, HttpMethod.Post, $"/admin/users/{suspendedUser}/resume"));
            await AssertServedAtAsync(b, suspendedKey);
            await AssertServedAtAsync(b, suspendedToken);
        }
        finally
        {
            await Task.WhenAll(a.DisposeAsync().AsTask(), b.DisposeAsync().AsTask());
        }
    }

    [Fact]
    public async Task ServiceTokens_RevokedOrSuspendedThroughSiloA_AreRefusedAtSiloBsGatewayOnTheNextCall()
    {
        var (a, b, service) = await StartClusterAsync();
        try
        {
            await a.CreateUserWithKeyAsync(service.Name, "service");
            var alice = NewId("alice");
            await a.CreateUserWithKeyAsync(alice, "user");
            await using var client = await ServiceClientHost.StartAsync(b, service);

            // Tokens minted now and used at B, so B's gateway has verified (and cached) them before any admin action. Each
            // starts a generation there that is still to be read: a read is judged by the gateway alone, a start by the
            // user's grain as well.
            var bob = NewId("bob");
            await a.CreateUserWithKeyAsync(bob, "user");
            var own = client.Tokens.TokenFor(null);
            var forAlice = client.Tokens.TokenFor(alice);
            var forBob = client.Tokens.TokenFor(bob);
            var ownGeneration = await StartAsync(client, own, null);
            var aliceGeneration = await StartAsync(client, forAlice, alice);
            var bobGeneration = await StartAsync(client, forBob, bob);
            await LogHostAsync(a, service.Name);
            await LogHostAsync(a, alice);
            await LogHostAsync(a, bob);

            // A user the service acts for, suspended through A: the token acting for him is refused at B.
            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(a, HttpMethod.Post, $"/admin/users/{bob}/suspend"));
            await AssertRefusedAsync(ServiceRefusal.Suspended, client, forBob, bob, bobGeneration);

            // revoke-tokens on a user the service acts for: the token acting for her is refused at B; the service's own still works.
            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(a, HttpMethod.Post, $"/admin/users/{alice}/revoke-tokens"));
            await AssertRefusedAsync(ServiceRefusal.NotAuthenticated, client, forAlice, alice, aliceGeneration);
            await ReadAsync(client, own, ownGeneration);
            await StartAsync(client, own, null);

            // revoke-tokens on the service itself: its earlier token is refused at B.
            Assert.Equal(HttpStatusCode.NoContent, await AdminAsync(a, HttpMethod.Post, $"/admin/users/{service.Name}/revoke-tokens"));
            await AssertRefusedAsync(ServiceRefusal.NotAuthenticated, client, own, null, ownGeneration);
        }
        finally
        {
            await Task.WhenAll(a.DisposeAsync().AsTask(), b.DisposeAsync().AsTask());
        }
    }

    /// <summary>Two members of one fresh cluster; both read the one bootstrap key file and know the one test service.</summary>
    private async Task<(TestSilo A, TestSilo B, ServiceKeyPair Service)> StartClusterAsync()
    {
        var cluster = await fixture.CreateClusterAsync();
        var service = ServiceKeyPair.Create(cluster.Directory, "svc-revocation");
        cluster = cluster with
        {
            Settings = new Dictionary<string, string?>(cluster.Settings.Concat(ServiceKeyPair.Settings(service)))
            {
                ["Bastion:Bootstrap:KeyFile"] = Path.Combine(cluster.Directory, "admin-api-key"),
            },
        };

        // A starts first so that it alone bootstraps the admin; B joins its cluster.
        var a = await cluster.StartSiloAsync("a");
        try
        {
            return (a, await cluster.StartSiloAsync("b"), service);
        }
        catch
        {
            await a.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts a generation through the client's gateway (silo B) with exactly <paramref name="token"/>.</summary>
    private static Task<Guid> StartAsync(ServiceClientHost client, string token, string? onBehalfOf) =>
        WithTokenAsync(token, () => client.Cluster.GetGrain<IServiceGateway>(0).StartCompletionAsync(new GenerationRequest(Model, "Hi", 4), onBehalfOf));

    private static Task<GenerationChunk> ReadAsync(ServiceClientHost client, string token, Guid generation) =>
        WithTokenAsync(token, () => client.Cluster.GetGrain<IServiceGateway>(0).ReadAsync(generation, 0, 1));

    /// <summary>Both a new generation and a read of one started before are refused at B, for <paramref name="reason"/>.</summary>
    private static async Task AssertRefusedAsync(ServiceRefusal reason, ServiceClientHost client, string token, string? onBehalfOf, Guid startedBefore)
    {
        Assert.Equal(reason, (await Assert.ThrowsAsync<ServiceRefusedException>(() => StartAsync(client, token, onBehalfOf))).Reason);
        Assert.Equal(reason, (await Assert.ThrowsAsync<ServiceRefusedException>(() => ReadAsync(client, token, startedBefore))).Reason);
    }

    private static async Task<T> WithTokenAsync<T>(string token, Func<Task<T>> call)
    {
        RequestContext.Set(ServiceCallContext.ServiceTokenKey, token);
        try
        {
            return await call();
        }
        finally
        {
            RequestContext.Remove(ServiceCallContext.ServiceTokenKey);
        }
    }

    /// <summary>
    /// The bearer is served at <paramref name="silo"/> on a route whose handler asks the user grain again (a completion)
    /// and on one where the permission check is the only gate (<c>GET /v1/me</c>).
    /// </summary>
    private static async Task AssertServedAtAsync(TestSilo silo, string bearer)
    {
        using var completion = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", bearer, new { model = Model, prompt = "Hi", max_tokens = 1 }));
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        using var me = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", bearer));
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
    }

    /// <summary>Every bearer is refused at <paramref name="silo"/> on both routes, with the one 401 body every authentication failure gets.</summary>
    private static async Task AssertRefusedAtAsync(TestSilo silo, params string[] bearers)
    {
        await silo.AssertIdenticalUnauthorizedAsync(bearers);
        foreach (var bearer in bearers)
        {
            using var me = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", bearer));
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
            using var problem = JsonDocument.Parse(await me.Content.ReadAsStringAsync());
            Assert.Equal("urn:bastion:problem:unauthorized", problem.RootElement.GetProperty("type").GetString());
        }
    }

    private static async Task<HttpStatusCode> AdminAsync(TestSilo silo, HttpMethod method, string path)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(method, path, silo.AdminKey));
        return response.StatusCode;
    }

    private static async Task<string> IssueKeyAsync(TestSilo silo, string userId)
    {
        using var issued = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{userId}/api-keys", silo.AdminKey, new { label = "second" }));
        Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
        using var json = JsonDocument.Parse(await issued.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("api_key").GetString()!;
    }

    private static async Task<string> ExchangeAsync(TestSilo silo, string apiKey)
    {
        using var response = await silo.Http.PostAsJsonAsync("/v1/auth/token", new { api_key = apiKey });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("access_token").GetString()!;
    }

    // bst_<key id>_<secret>: the key id is the part the admin route names.
    private static string KeyIdOf(string apiKey) => apiKey.Split('_')[1];

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    /// <summary>Says which silo holds the user's grain, so a run's output shows which hop crossed silos.</summary>
    private async Task LogHostAsync(TestSilo silo, string userId)
    {
        var grains = silo.Services.GetRequiredService<IGrainFactory>();
        var user = grains.GetGrain<IUserGrain>(silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(userId));
        var host = await grains.GetGrain<IManagementGrain>(0).GetActivationAddress(user);
        output.WriteLine($"{userId}: grain on {host} (A is {silo.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress})");
    }
}
