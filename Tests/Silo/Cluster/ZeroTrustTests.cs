using Bastion.Client;
using Bastion.Cluster;
using Bastion.Generation;
using Bastion.Users;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// A real silo and a real Orleans external client on its gateway port: only calls to the facade with a valid service
/// token get in; a forged, expired, wrong-audience or missing token, or a call to any other grain, is refused.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ZeroTrustTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    [Fact]
    public async Task ServiceClient_WithAValidToken_CompletesStreamsAndAdministers()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var operator_ = ServiceKeyPair.Create(directory, "svc-ops");
        var app = ServiceKeyPair.Create(directory, "svc-app");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(operator_, app));
        await silo.CreateUserWithKeyAsync(operator_.Name, "admin");
        await silo.CreateUserWithKeyAsync(app.Name, "user");
        await using var ops = await ServiceClientHost.StartAsync(silo, operator_);
        await using var appClient = await ServiceClientHost.StartAsync(silo, app);

        // The service's own completion, whole and streamed.
        var result = await appClient.Client.CompleteAsync(new GenerationRequest(Model, "Hello", 6));
        Assert.Equal(6, result.Usage.CompletionTokens);
        var pieces = new List<string>();
        await foreach (var piece in appClient.Client.StreamAsync(new GenerationRequest(Model, "Hello", 5, Sampling: null)))
        {
            pieces.Add(piece);
        }

        Assert.NotEmpty(pieces);

        // Admin work needs the admin role: the app service has only "user".
        var forbidden = await Assert.ThrowsAsync<ServiceRefusedException>(() => appClient.Client.CreateUserAsync("mallory", ["admin"]));
        Assert.Equal(ServiceRefusal.Forbidden, forbidden.Reason);

        await ops.Client.CreateUserAsync("alice", ["user"]);
        using (var audit = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/admin/audit?limit=5", silo.AdminKey)))
        {
            Assert.Contains("\"user.create\"", await audit.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var key = await ops.Client.IssueApiKeyAsync("alice", "ci", expiresInDays: 30);
        Assert.StartsWith("bst_", key.ApiKey, StringComparison.Ordinal);
        Assert.Equal(200, HttpStatusCodeOf(await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", key.ApiKey))));
        Assert.Equal(["user"], (await ops.Client.GetUserAsync("alice"))!.Roles);

        // Acting for alice needs the service role.
        var notYet = await Assert.ThrowsAsync<ServiceRefusedException>(() => appClient.Client.CompleteAsync(new GenerationRequest(Model, "Hi", 3), onBehalfOf: "alice"));
        Assert.Equal(ServiceRefusal.Forbidden, notYet.Reason);
        await ops.Client.SetRolesAsync(app.Name, ["service"]);
        var forAlice = await appClient.Client.CompleteAsync(new GenerationRequest(Model, "Hi", 3), onBehalfOf: "alice");
        Assert.Equal(3, forAlice.Usage.CompletionTokens);
        Assert.Equal(1, (await ops.Client.GetUserAsync("alice"))!.Requests);

        // A suspended user stops the service acting for them; resuming restores it.
        await ops.Client.SuspendAsync("alice");
        var suspended = await Assert.ThrowsAsync<ServiceRefusedException>(() => appClient.Client.CompleteAsync(new GenerationRequest(Model, "Hi", 3), onBehalfOf: "alice"));
        Assert.Equal(ServiceRefusal.Suspended, suspended.Reason);
        await ops.Client.ResumeAsync("alice");
        await ops.Client.RevokeApiKeyAsync("alice", key.KeyId);
        Assert.Equal(401, HttpStatusCodeOf(await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", key.ApiKey))));
    }

    [Fact]
    public async Task StateChangingCalls_RepeatedWithTheSameIdempotencyKey_ApplyOnce()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var operator_ = ServiceKeyPair.Create(directory, "svc-ops");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(operator_));
        await silo.CreateUserWithKeyAsync(operator_.Name, "admin");
        await using var ops = await ServiceClientHost.StartAsync(silo, operator_);
        var gateway = ops.Cluster.GetGrain<IServiceGateway>(0);
        RequestContext.Set(ServiceCallContext.ServiceTokenKey, ops.Tokens.TokenFor(null));

        // A retry after a lost answer repeats the call with the same key: the same outcome, applied once.
        await gateway.CreateUserAsync("bob", ["user"], "create-bob-1");
        await gateway.CreateUserAsync("bob", ["user"], "create-bob-1");
        var conflict = await Assert.ThrowsAsync<ServiceRefusedException>(() => gateway.CreateUserAsync("bob", ["user"], "create-bob-2"));
        Assert.Equal(ServiceRefusal.Conflict, conflict.Reason);

        var first = await gateway.IssueApiKeyAsync("bob", "ci", null, "issue-bob-1");
        var again = await gateway.IssueApiKeyAsync("bob", "ci", null, "issue-bob-1");
        Assert.Equal(first.ApiKey, again.ApiKey);
        Assert.Single((await gateway.GetUserAsync("bob"))!.ApiKeys);

        var reused = await Assert.ThrowsAsync<ServiceRefusedException>(() => gateway.IssueApiKeyAsync("bob", "other", null, "issue-bob-1"));
        Assert.Equal(ServiceRefusal.Conflict, reused.Reason);
    }

    [Fact]
    public async Task Calls_WithoutAValidTokenOrToANonFacadeGrain_AreRefused()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var service = ServiceKeyPair.Create(directory, "svc-ops");
        var impostor = ServiceKeyPair.Create(directory, "svc-ops-forged");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(service));
        await silo.CreateUserWithKeyAsync(service.Name, "admin");
        await using var client = await ServiceClientHost.StartAsync(silo, service);
        var gateway = client.Cluster.GetGrain<IServiceGateway>(0);

        // The baseline: a valid token reaches the facade.
        RequestContext.Set(ServiceCallContext.ServiceTokenKey, client.Tokens.TokenFor(null));
        Assert.Null(await gateway.GetUserAsync("nobody"));

        var now = DateTimeOffset.UtcNow;
        using var forger = new ServiceTokenIssuer(service.Name, impostor.PrivateKeyFile, TimeSpan.FromMinutes(5), TimeProvider.System);
        var badTokens = new Dictionary<string, string?>
        {
            ["missing"] = null,
            ["forged (another key)"] = forger.TokenFor(null),
            ["expired"] = client.Tokens.Sign(null, now.AddMinutes(-10), now.AddMinutes(-6)),
            ["too long-lived"] = client.Tokens.Sign(null, now, now.AddMinutes(30)),
            ["wrong audience"] = client.Tokens.Sign(null, now, now.AddMinutes(2), audience: "bastion"),
            ["not a JWS"] = "not-a-token",
        };
        foreach (var (name, token) in badTokens)
        {
            SetToken(token);
            var refused = await Assert.ThrowsAsync<ServiceRefusedException>(() => gateway.GetUserAsync("nobody"));
            Assert.True(refused.Reason == ServiceRefusal.NotAuthenticated, name);
        }

        // A valid token opens the facade only: user, generation and management grains stay shut.
        SetToken(client.Tokens.TokenFor(null));
        await AssertForbiddenAsync(() => client.Cluster.GetGrain<IUserGrain>("u_anyone").GetProfileAsync());
        await AssertForbiddenAsync(() => client.Cluster.GetGrain<IUserGrain>("u_anyone").SetRolesAsync(["admin"]));
        await AssertForbiddenAsync(() => client.Cluster.GetGrain<IGenerationGrain>(Guid.NewGuid()).GetResultAsync());
        await AssertForbiddenAsync(() => client.Cluster.GetGrain<IManagementGrain>(0).GetHosts());
        await AssertForbiddenAsync(() => client.Cluster.GetGrain<IWorkerLoadGrain>(IWorkerLoadGrain.Key).ReadAsync());

        // And without a token they are refused before anything else is judged.
        SetToken(null);
        var anonymous = await Assert.ThrowsAsync<ServiceRefusedException>(() => client.Cluster.GetGrain<IManagementGrain>(0).GetHosts());
        Assert.Equal(ServiceRefusal.NotAuthenticated, anonymous.Reason);
        RequestContext.Clear();
    }

    private static void SetToken(string? token)
    {
        if (token is null)
        {
            RequestContext.Remove(ServiceCallContext.ServiceTokenKey);
        }
        else
        {
            RequestContext.Set(ServiceCallContext.ServiceTokenKey, token);
        }
    }

    private static async Task AssertForbiddenAsync(Func<Task> call)
    {
        var refused = await Assert.ThrowsAsync<ServiceRefusedException>(call);
        Assert.Equal(ServiceRefusal.Forbidden, refused.Reason);
    }

    private static int HttpStatusCodeOf(HttpResponseMessage response)
    {
        using (response)
        {
            return (int)response.StatusCode;
        }
    }
}
