using System.Net;
using Bastion.Generation;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>Two silos of one cluster, started at the same moment on a fresh database.</summary>
[Collection(SiloCollection.Name)]
public sealed class ClusterStartupTests(SiloFixture fixture)
{
    [Fact]
    public async Task TwoSilos_StartingTogether_BootstrapExactlyOneAdminWhoseKeyWorksOnBoth()
    {
        var cluster = await fixture.CreateClusterAsync();
        var starting = new[] { cluster.StartSiloAsync("first"), cluster.StartSiloAsync("second") };

        var silos = await Task.WhenAll(starting);
        try
        {
            // One cluster, not two single-silo clusters that happen to share a database.
            var activeSeen = silos.Max(s => s.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active));
            Assert.Equal(2, activeSeen);
            var keyFiles = silos.Select(s => Path.Combine(s.DataDirectory, "admin-api-key")).Where(File.Exists).ToList();
            var adminKey = (await File.ReadAllTextAsync(Assert.Single(keyFiles))).Trim();
            foreach (var silo in silos)
            {
                using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models", adminKey));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }
        finally
        {
            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task ApiOnlySilo_LoadsNoModel_AndItsCompletionsRunOnAWorker()
    {
        var cluster = await fixture.CreateClusterAsync();
        await using var api = await cluster.StartSiloAsync("api", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" });
        await using var worker = await cluster.StartSiloAsync("worker", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "worker" });

        Assert.False(api.Services.GetRequiredService<ModelCatalog>().IsReady);
        Assert.True(worker.Services.GetRequiredService<ModelCatalog>().IsReady);
        var apiKey = await api.CreateUserWithKeyAsync("roles-" + Guid.NewGuid().ToString("N"), "user");
        for (var i = 0; i < 4; i++)
        {
            using var completion = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "Hi", max_tokens = 2 }));
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        using var apiReady = await api.Http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, apiReady.StatusCode);
    }

    [Fact]
    public async Task SixteenConcurrentStreams_AcrossTwoWorkerSilos_AllComplete()
    {
        var cluster = await fixture.CreateClusterAsync();
        await using var api = await cluster.StartSiloAsync("api", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" });
        var workers = await Task.WhenAll(Enumerable.Range(1, 2).Select(i =>
            cluster.StartSiloAsync($"worker-{i}", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "worker" })));
        try
        {
            var id = "streams-" + Guid.NewGuid().ToString("N");
            var apiKey = await api.CreateUserWithKeyAsync(id, "user");
            using (var limits = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", api.AdminKey, new { concurrency = 16 })))
            {
                Assert.Equal(HttpStatusCode.OK, limits.StatusCode);
            }

            var bodies = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
            {
                using var response = await api.Http.SendAsync(
                    TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = $"Stream {i}", max_tokens = 8, temperature = 0, stream = true }),
                    HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                return await response.Content.ReadAsStringAsync();
            }));

            Assert.All(bodies, body => Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal));
            Assert.All(bodies, body => Assert.DoesNotContain("event: error", body, StringComparison.Ordinal));
        }
        finally
        {
            await Task.WhenAll(workers.Select(w => w.DisposeAsync().AsTask()));
        }
    }
}
