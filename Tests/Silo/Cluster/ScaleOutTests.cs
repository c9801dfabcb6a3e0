using System.Diagnostics;
using System.Net;
using Bastion.Generation;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// A worker silo that joins a running cluster receives generations with no restart elsewhere; generations per second
/// with one and with two workers behind one API silo (on two cores this shows the cost of the hop, not a speed-up).
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ScaleOutTests(SiloFixture fixture, ITestOutputHelper output)
{
    private const int Generations = 48;
    private const int Clients = 8;

    [Fact]
    public async Task JoiningWorker_ReceivesGenerations()
    {
        var cluster = await fixture.CreateClusterAsync();
        cluster = cluster with { Settings = new Dictionary<string, string?>(cluster.Settings) { ["Bastion:Bootstrap:KeyFile"] = Path.Combine(cluster.Directory, "admin-api-key") } };
        var api = await cluster.StartSiloAsync("api", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" });
        var silos = new List<TestSilo> { api };
        try
        {
            silos.Add(await cluster.StartSiloAsync("w1", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "worker", ["Bastion:Node:Roles:1"] = "api" }));
            var id = "scale-" + Guid.NewGuid().ToString("N");
            var apiKey = await api.CreateUserWithKeyAsync(id, "user");
            using (var limits = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", api.AdminKey, new
            {
                concurrency = 64,
                requests = new { algorithm = "token_bucket", limit = 100000, window_seconds = 60 },
                tokens = new { algorithm = "token_bucket", limit = 10000000, window_seconds = 60 },
            })))
            {
                Assert.Equal(HttpStatusCode.OK, limits.StatusCode);
            }

            await RunAsync(api, apiKey); // warm-up: JIT, grain activations, connections

            // The user's grain lives on one of the two edges, so one of them calls it from another silo, and the silo
            // assertion then covers the request's lists too: stop strings and chat messages must pass it.
            foreach (var edge in silos)
            {
                using var stop = await edge.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey,
                    new { model = "bastion-tiny-gpt2", prompt = "Scale", max_tokens = 4, stop = new[] { "\n", "END" } }));
                Assert.Equal(HttpStatusCode.OK, stop.StatusCode);
                using var chat = await edge.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/chat/completions", apiKey,
                    new { model = "bastion-tiny-gpt2", messages = new[] { new { role = "user", content = "Hi" } }, max_tokens = 4, stop = "\n" }));
                Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
            }

            var one = await RunAsync(api, apiKey);

            var joined = await cluster.StartSiloAsync("w2", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "worker", ["Bastion:Node:Roles:1"] = "api" });
            silos.Add(joined);
            var drain = joined.Services.GetRequiredService<WorkerDrain>();
            var two = await RunAsync(api, apiKey);

            output.WriteLine($"generations per second through one API silo, {Clients} clients, 16 tokens each: 1 worker {one:F1}, 2 workers {two:F1}");
            output.WriteLine($"generations run on the joined worker: {drain.Started} of {Generations}");
            Assert.True(drain.Started > 0, "The joined worker received no generation.");
        }
        finally
        {
            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    /// <summary>Runs <see cref="Generations"/> completions from <see cref="Clients"/> concurrent clients; returns generations per second.</summary>
    private static async Task<double> RunAsync(TestSilo api, string apiKey)
    {
        var next = 0;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= Generations)
            {
                using var response = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "Scale", max_tokens = 16 }));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }));
        return Generations / watch.Elapsed.TotalSeconds;
    }
}
