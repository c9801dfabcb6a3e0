using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Bastion.Diagnostics;
using Bastion.Generation;
using Bastion.Hosting;
using Bastion.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// The OpenTelemetry wiring on real silos (an API-only silo and a worker-only silo of one cluster), read through
/// in-memory exporters added to each silo's own tracer and meter providers (docs/metrics.md).
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class TelemetryRegistrationTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    [Fact]
    public async Task StreamedCompletion_IsOneTrace_FromTheHttpSpanThroughGrainCallsOnBothSilosToTheEngineSpans()
    {
        await using var cluster = await TracedClusterAsync();
        var apiKey = await cluster.Api.CreateUserWithKeyAsync("traced-" + Guid.NewGuid().ToString("N"), "user");

        // The test is the client: its own span id is the HTTP span's parent, its trace id the one to follow.
        var traceId = ActivityTraceId.CreateRandom();
        var clientSpanId = ActivitySpanId.CreateRandom();
        using var request = TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Trace me", max_tokens = 6, temperature = 0, stream = true });
        request.Headers.Add("traceparent", $"00-{traceId}-{clientSpanId}-01");
        using (var response = await cluster.Api.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.EndsWith("data: [DONE]\n\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The HTTP span ends once the response has gone, just after the client has read it all.
        var spans = await cluster.WaitForSpansAsync(all => all.Any(s => s.TraceId == traceId && IsCompletionRequest(s)));
        var trace = spans.Where(s => s.TraceId == traceId).ToList();
        var byId = trace.ToDictionary(s => s.SpanId);

        var http = Assert.Single(trace, IsCompletionRequest);
        Assert.Equal(ActivityKind.Server, http.Kind);
        Assert.Equal(clientSpanId, http.ParentSpanId);
        Assert.Equal("/v1/completions", http.GetTagItem("http.route"));

        // The user grain admits the request on the API silo; the generation runs on the worker, the only silo with
        // generation grains and models.
        Assert.False(cluster.Api.Services.GetRequiredService<ModelCatalog>().IsReady);
        Assert.Contains(trace, s => s.Kind == ActivityKind.Server && s.DisplayName.EndsWith("IUserGrain/SubmitAsync", StringComparison.Ordinal));
        Assert.Contains(trace, s => s.Kind == ActivityKind.Server && s.DisplayName.Contains("IGenerationGrain/ReadAsync", StringComparison.Ordinal));

        var queueWait = Assert.Single(trace, s => s.DisplayName == InferenceTracing.QueueWaitSpan);
        var prefill = Assert.Single(trace, s => s.DisplayName == InferenceTracing.PrefillSpan);
        var decode = Assert.Single(trace, s => s.DisplayName == InferenceTracing.DecodeSpan);
        Assert.Equal(queueWait.ParentSpanId, prefill.ParentSpanId);
        Assert.Equal(queueWait.ParentSpanId, decode.ParentSpanId);
        Assert.True(queueWait.StartTimeUtc <= prefill.StartTimeUtc && prefill.StartTimeUtc <= decode.StartTimeUtc);
        Assert.Equal(Model, decode.GetTagItem("gen_ai.request.model"));
        Assert.True(Assert.IsType<int>(decode.GetTagItem("gen_ai.usage.output_tokens")) >= 1);

        // From the engine back to the HTTP span, every parent is a span of this trace: the worker's grain call that
        // queued the sequence, the API silo's call into it, the user grain's turn, up to the request.
        var chain = new List<Activity>();
        for (var span = decode; span.SpanId != http.SpanId; span = byId[span.ParentSpanId])
        {
            Assert.True(byId.ContainsKey(span.ParentSpanId), $"The parent of '{span.DisplayName}' is not in the trace.");
            chain.Add(span);
        }

        var queuedBy = byId[decode.ParentSpanId];
        Assert.Equal(ActivityKind.Server, queuedBy.Kind);
        Assert.Contains("IGenerationGrain/StartAsync", queuedBy.DisplayName, StringComparison.Ordinal);
        var caller = byId[queuedBy.ParentSpanId];
        Assert.Equal(ActivityKind.Client, caller.Kind);
        Assert.Contains("IGenerationGrain/StartAsync", caller.DisplayName, StringComparison.Ordinal);
        Assert.Contains(chain, s => s.Kind == ActivityKind.Server && s.DisplayName.EndsWith("IUserGrain/SubmitAsync", StringComparison.Ordinal));

        // Membership probes, directory lookups, timers and clustering polls start no traces of their own.
        Assert.DoesNotContain(spans, s => s.ParentSpanId == default && s.Kind != ActivityKind.Server);
        Assert.DoesNotContain(spans, s => s.DisplayName.StartsWith("IGrainTimerInvoker/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Telemetry_OfAdminRoutesCompletionsAndCredentials_NamesNoUserKeyTokenPseudonymPromptOrCompletion()
    {
        await using var cluster = await TracedClusterAsync();
        var api = cluster.Api;
        var userId = "privacy-user-" + Guid.NewGuid().ToString("N");
        var prompt = "zebra quartz " + Guid.NewGuid().ToString("N");
        var apiKey = await api.CreateUserWithKeyAsync(userId, "user");
        var pseudonym = api.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(userId);

        string accessToken;
        using (var exchange = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/auth/token", null, new { api_key = apiKey })))
        {
            Assert.Equal(HttpStatusCode.OK, exchange.StatusCode);
            using var json = JsonDocument.Parse(await exchange.Content.ReadAsStringAsync());
            accessToken = json.RootElement.GetProperty("access_token").GetString()!;
        }

        string completion;
        using (var response = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt, max_tokens = 12, temperature = 0 })))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            completion = json.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
        }

        using (var stream = await api.Http.SendAsync(
            TestSilo.Request(HttpMethod.Post, "/v1/chat/completions", accessToken, new { model = Model, messages = new[] { new { role = "user", content = prompt } }, max_tokens = 4, stream = true }),
            HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            await stream.Content.ReadAsStringAsync();
        }

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, $"/admin/users/{userId}"),
            (HttpMethod.Post, $"/admin/users/{userId}/suspend"),
            (HttpMethod.Post, $"/admin/users/{userId}/resume"),
            (HttpMethod.Post, $"/admin/users/{userId}/revoke-tokens"),
            (HttpMethod.Get, $"/v1/models?user={userId}&prompt={Uri.EscapeDataString(prompt)}"),
        })
        {
            using var response = await api.Http.SendAsync(TestSilo.Request(method, path, api.AdminKey));
            Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {response.StatusCode}");
        }

        // A refused credential too: an unknown key in the Authorization header.
        using (var refused = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models", apiKey + "x")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        using (var scrape = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{userId}", api.AdminKey)))
        {
            Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        }

        var spans = await cluster.WaitForSpansAsync(all => all.Count(s => s.GetTagItem("http.route") is "/admin/users/{id}") >= 2);
        var metrics = cluster.CollectMetrics();
        var workerScrape = await cluster.ScrapeWorkerAsync();
        Assert.Contains(spans, s => s.GetTagItem("http.route") is "/admin/users/{id}/suspend");
        Assert.Contains(spans, s => s.DisplayName == InferenceTracing.DecodeSpan);
        Assert.Contains(metrics, m => m.Name == "gen_ai.client.token.usage");
        Assert.Contains("bastion_completion_tokens_total{", workerScrape, StringComparison.Ordinal);

        var secrets = new List<string> { userId, apiKey, accessToken, pseudonym, prompt, "zebra quartz" };
        if (completion.Trim().Length >= 8)
        {
            secrets.Add(completion.Trim());
        }

        var exported = spans.SelectMany(SpanText).Concat(metrics.SelectMany(MetricText)).Append(workerScrape).ToList();
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(exported, text => text.Contains(secret, StringComparison.Ordinal));
        }

        // What was removed is replaced by what an operator needs: the route template.
        Assert.DoesNotContain(spans, s => s.GetTagItem("url.path") is not null || s.GetTagItem("url.query") is not null);
        Assert.Contains(spans, s => s.DisplayName == "GET /admin/users/{id}");
    }

    [Fact]
    public async Task MetricsPort_OnAWorkerOnlySilo_ServesOnlyTheScrape()
    {
        await using var cluster = await TracedClusterAsync();
        var port = cluster.Worker.Services.GetRequiredService<MetricsEndpoint>().Port!.Value;
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        using var scrape = await http.GetAsync("/metrics");
        using var health = await http.GetAsync("/healthz");
        using var admin = await http.GetAsync("/admin/users");

        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        Assert.Contains("bastion_model_info{otel_scope_name=\"Bastion\",model=\"bastion-tiny-gpt2\",provider=\"cpu\"} 1", await scrape.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, health.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, admin.StatusCode);
        // The worker has no admin API on its HTTPS port.
        using var edge = await cluster.Worker.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.NotFound, edge.StatusCode);
    }

    private static bool IsCompletionRequest(Activity span) =>
        span.Source.Name == "Microsoft.AspNetCore" && span.GetTagItem("http.route") is "/v1/completions";

    private static IEnumerable<string> SpanText(Activity span)
    {
        yield return span.DisplayName;
        yield return span.OperationName;
        yield return span.StatusDescription ?? string.Empty;
        foreach (var tag in span.TagObjects)
        {
            yield return tag.Key + "=" + Text(tag.Value);
        }

        foreach (var item in span.Events)
        {
            yield return item.Name;
            foreach (var tag in item.Tags)
            {
                yield return tag.Key + "=" + Text(tag.Value);
            }
        }

        foreach (var (key, value) in span.Baggage)
        {
            yield return key + "=" + value;
        }
    }

    private static IEnumerable<string> MetricText(MetricSnapshot metric)
    {
        foreach (var point in metric.MetricPoints)
        {
            foreach (var tag in point.Tags)
            {
                yield return metric.Name + ":" + tag.Key + "=" + Text(tag.Value);
            }
        }
    }

    private static string Text(object? value) => value switch
    {
        null => string.Empty,
        string text => text,
        System.Collections.IEnumerable items => string.Join(",", items.Cast<object?>().Select(Text)),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty,
    };

    private async Task<TracedCluster> TracedClusterAsync()
    {
        var cluster = await fixture.CreateClusterAsync();
        var traced = new TracedCluster();
        traced.Api = await cluster.StartSiloAsync("api", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" }, traced.AddExporters);
        traced.Worker = await cluster.StartSiloAsync(
            "worker", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "worker", ["Bastion:Telemetry:MetricsPort"] = "0" }, traced.AddExporters);
        return traced;
    }

    /// <summary>
    /// Two silos, each with in-memory exporters on its own providers. Silos of one process share the process-wide
    /// activity listeners, so both see every span; the union, by span id, is the trace.
    /// </summary>
    private sealed class TracedCluster : IAsyncDisposable
    {
        private readonly LockedCollection<Activity> _apiSpans = new();
        private readonly LockedCollection<Activity> _workerSpans = new();
        private readonly LockedCollection<MetricSnapshot> _metrics = new();
        private int _silos;

        public TestSilo Api { get; set; } = null!;

        public TestSilo Worker { get; set; } = null!;

        public void AddExporters(WebApplicationBuilder builder)
        {
            var spans = _silos++ == 0 ? _apiSpans : _workerSpans;
            builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(spans));
            builder.Services.ConfigureOpenTelemetryMeterProvider(metering => metering.AddInMemoryExporter(_metrics));
        }

        /// <summary>Every ended span either silo exported, once <paramref name="done"/> holds (within a bound).</summary>
        public async Task<List<Activity>> WaitForSpansAsync(Func<List<Activity>, bool> done)
        {
            var waited = Stopwatch.StartNew();
            while (true)
            {
                Api.Services.GetRequiredService<TracerProvider>().ForceFlush();
                Worker.Services.GetRequiredService<TracerProvider>().ForceFlush();
                List<Activity> all = [.. _apiSpans.Snapshot().Concat(_workerSpans.Snapshot()).DistinctBy(s => s.SpanId)];

                if (done(all) || waited.Elapsed > TimeSpan.FromSeconds(20))
                {
                    return all;
                }

                // Only the export of a span that ends after the response is awaited: there is no hook for it.
                await Task.Delay(50);
            }
        }

        /// <summary>Collects both silos' metrics now.</summary>
        public List<MetricSnapshot> CollectMetrics()
        {
            Api.Services.GetRequiredService<MeterProvider>().ForceFlush();
            Worker.Services.GetRequiredService<MeterProvider>().ForceFlush();
            return _metrics.Snapshot();
        }

        /// <summary>The worker's scrape, from its metrics port.</summary>
        public async Task<string> ScrapeWorkerAsync()
        {
            var port = Worker.Services.GetRequiredService<MetricsEndpoint>().Port!.Value;
            using var http = new HttpClient();
            return await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        }

        public async ValueTask DisposeAsync()
        {
            await Worker.DisposeAsync();
            await Api.DisposeAsync();
        }
    }

    /// <summary>Exporters add from whichever thread ends a span; the test reads copies.</summary>
    private sealed class LockedCollection<T> : System.Collections.ObjectModel.Collection<T>
    {
        private readonly Lock _lock = new();

        public List<T> Snapshot()
        {
            lock (_lock)
            {
                return [.. Items];
            }
        }

        protected override void InsertItem(int index, T item)
        {
            lock (_lock)
            {
                base.InsertItem(index, item);
            }
        }
    }
}
