using System.Net;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>Sixteen concurrent streams across two worker silos, placed by batching queue depth, all succeed.</summary>
[Collection(SiloCollection.Name)]
public sealed class GenerationPlacementTests(SiloFixture fixture)
{
    [Fact]
    public async Task SixteenConcurrentStreams_AcrossTwoWorkers_AllComplete()
    {
        var cluster = await fixture.CreateClusterAsync();
        cluster = cluster with { Settings = new Dictionary<string, string?>(cluster.Settings) { ["Bastion:Bootstrap:KeyFile"] = Path.Combine(cluster.Directory, "admin-api-key") } };
        var first = await cluster.StartSiloAsync("0");
        var second = await cluster.StartSiloAsync("1");
        TestSilo[] silos = [first, second];
        try
        {
            var id = "placed-" + Guid.NewGuid().ToString("N");
            var apiKey = await first.CreateUserWithKeyAsync(id, "user");
            using (var limits = await first.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", first.AdminKey, new { concurrency = 64 })))
            {
                Assert.Equal(HttpStatusCode.OK, limits.StatusCode);
            }

            var bodies = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
            {
                var silo = silos[i % 2];
                using var response = await silo.Http.SendAsync(
                    TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "Stream " + i, max_tokens = 24, stream = true }),
                    HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                return await response.Content.ReadAsStringAsync();
            }));

            Assert.All(bodies, body =>
            {
                Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
                Assert.DoesNotContain("event: error", body, StringComparison.Ordinal);
            });
        }
        finally
        {
            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
        }
    }
}
