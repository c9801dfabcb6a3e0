using System.Net;
using System.Text.Json;
using Bastion.Generation;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// A worker asked to stop drains: it finishes its running generations within <c>Bastion:Node:DrainTimeout</c>,
/// takes no new ones, and ends what is left at the timeout with a retryable error event.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class DrainTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    [Fact]
    public async Task StoppingWorker_FinishesRunningStreams_TakesNoNewOnes_AndEndsTheRestRetryably()
    {
        var cluster = await fixture.CreateClusterAsync(new Dictionary<string, string?> { ["Bastion:Node:DrainTimeout"] = "00:00:30" });
        cluster = cluster with { Settings = new Dictionary<string, string?>(cluster.Settings) { ["Bastion:Bootstrap:KeyFile"] = Path.Combine(cluster.Directory, "admin-api-key") } };
        var api = await cluster.StartSiloAsync("api", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" });
        var workers = new List<TestSilo> { await cluster.StartSiloAsync("w1"), await cluster.StartSiloAsync("w2") };
        var running = new List<TestSilo>([api, .. workers]);
        try
        {
            var id = "drain-" + Guid.NewGuid().ToString("N");
            var apiKey = await api.CreateUserWithKeyAsync(id, "user");
            using (var limits = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", api.AdminKey, new { concurrency = 64 })))
            {
                Assert.Equal(HttpStatusCode.OK, limits.StatusCode);
            }

            // A stream left unread holds its worker: its bounded buffer fills and the sequence waits for the reader.
            // The public cmpl- id is not the generation's grain key: the worker running it is the one with a running sequence.
            var (stream, reader) = await OpenStreamAsync(api, apiKey);
            var draining = workers.Single(w => w.Services.GetRequiredService<WorkerDrain>().Running == 1);
            var other = workers.Single(w => w != draining);
            var drain = draining.Services.GetRequiredService<WorkerDrain>();
            Assert.Equal(1, drain.Running);
            var started = drain.Started;

            running.Remove(draining);
            var stopping = draining.DisposeAsync().AsTask();
            await WaitUntilAsync(() => drain.IsDraining);

            // New generations go to the other worker; one placed before the board showed the drain is refused
            // before admission (503 with Retry-After, nothing charged) rather than run on the draining worker.
            for (var i = 0; i < 6; i++)
            {
                using var response = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "New " + i, max_tokens = 4 }));
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    await AssertRetryableAsync(response);
                }
            }

            Assert.Equal(started, drain.Started);

            // The running stream is finished, not cut off.
            var body = await reader.ReadToEndAsync();
            Assert.DoesNotContain("event: error", body, StringComparison.Ordinal);
            Assert.Contains("\"finish_reason\":\"", body, StringComparison.Ordinal);
            Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
            stream.Dispose();
            await stopping.WaitAsync(TimeSpan.FromSeconds(60));

            // A worker with no time to drain ends its running stream with a retryable error event.
            var impatient = await cluster.StartSiloAsync("w3", new Dictionary<string, string?> { ["Bastion:Node:DrainTimeout"] = "00:00:00" });
            running.Add(impatient);
            running.Remove(other);
            await other.DisposeAsync();
            var (cutStream, cutReader) = await OpenStreamAsync(api, apiKey);
            running.Remove(impatient);
            await impatient.DisposeAsync();
            var cut = await cutReader.ReadToEndAsync();
            cutStream.Dispose();
            Assert.Contains("event: error", cut, StringComparison.Ordinal);
            Assert.Contains("\"type\":\"urn:bastion:problem:unavailable\"", cut, StringComparison.Ordinal);
            Assert.Contains("\"status\":503", cut, StringComparison.Ordinal);
            Assert.EndsWith("data: [DONE]\n\n", cut, StringComparison.Ordinal);
        }
        finally
        {
            await Task.WhenAll(running.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    /// <summary>Opens a long stream and reads its first event, so that the generation is running.</summary>
    private static async Task<(HttpResponseMessage Response, StreamReader Reader)> OpenStreamAsync(TestSilo api, string apiKey)
    {
        var response = await api.Http.SendAsync(
            TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Go", max_tokens = 1000, temperature = 0, stream = true }),
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var line = await reader.ReadLineAsync();
        Assert.StartsWith("data: ", line, StringComparison.Ordinal);
        using var chunk = JsonDocument.Parse(line!["data: ".Length..]);
        Assert.StartsWith("cmpl-", chunk.RootElement.GetProperty("id").GetString(), StringComparison.Ordinal);
        return (response, reader);
    }

    internal static async Task AssertRetryableAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(response.Headers.RetryAfter);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.StartsWith("urn:bastion:problem:", json.RootElement.GetProperty("type").GetString(), StringComparison.Ordinal);
        Assert.True(json.RootElement.TryGetProperty("traceId", out _));
    }

    /// <summary>Waits for a condition another thread makes true (a state change, not a period of time).</summary>
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The condition did not hold within 30 seconds.");
            await Task.Delay(20);
        }
    }
}
