using Bastion.Cluster;
using Bastion.Generation;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// The facade on an API-only gateway silo reaches user and generation grains on a worker silo: silo-to-silo calls carry
/// assertions that the other silo accepts, while the client itself still reaches nothing but the facade there.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ServiceGatewayClusterTests(SiloFixture fixture)
{
    [Fact]
    public async Task ClientOnAnApiSilo_CompletesOnAWorkerSilo_ForSeveralUsers()
    {
        var cluster = await fixture.CreateClusterAsync();
        var app = ServiceKeyPair.Create(cluster.Directory, "svc-app");
        cluster = cluster with { Settings = new Dictionary<string, string?>(cluster.Settings.Concat(ServiceKeyPair.Settings(app))) };
        await using var api = await cluster.StartSiloAsync("api", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" });
        await using var worker = await cluster.StartSiloAsync("worker", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "worker" });
        await api.CreateUserWithKeyAsync(app.Name, "service");
        var users = Enumerable.Range(0, 4).Select(i => $"cluster-user-{i}-{Guid.NewGuid():N}").ToList();
        foreach (var user in users)
        {
            await api.CreateUserWithKeyAsync(user, "user");
        }

        await using var client = await ServiceClientHost.StartAsync(api, app);
        foreach (var user in users)
        {
            var streamed = new List<string>();
            await foreach (var piece in client.Client.StreamAsync(new GenerationRequest("bastion-tiny-gpt2", "Hi", 3), onBehalfOf: user))
            {
                streamed.Add(piece);
            }

            Assert.NotEmpty(streamed);
        }

        // The worker silo is not the client's gateway, but whatever reaches it from the client is still judged there.
        RequestContext.Set(ServiceCallContext.ServiceTokenKey, client.Tokens.TokenFor(null));
        var refused = await Assert.ThrowsAsync<ServiceRefusedException>(() => client.Cluster.GetGrain<IGenerationGrain>(Guid.NewGuid()).GetResultAsync());
        Assert.Equal(ServiceRefusal.Forbidden, refused.Reason);
        RequestContext.Clear();
    }
}
