using System.Net;
using System.Text.Json;
using Bastion.Generation;
using Bastion.Hosting;
using Bastion.Inference;
using Bastion.Tests.Grains.Inference;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// A silo serving two configured model directories: one the generated default, one with its own
/// generation.json and chat template. Its metrics and readiness details name both.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class ModelDirectoryApiTests(SiloFixture fixture) : IAsyncLifetime
{
    private const string Tiny = "tiny";
    private const string Chatty = "chatty";
    private const string ChattyTemplate = """
        {
          "begin": "### Conversation\n",
          "roles": {
            "system": { "prefix": "System: ", "suffix": "\n" },
            "user": { "prefix": "User: ", "suffix": "\n" },
            "assistant": { "prefix": "Assistant: ", "suffix": "\n" }
          },
          "generation_prefix": "Assistant:"
        }
        """;

    private readonly string _models = Path.Combine(Path.GetTempPath(), "bastion-models-api-" + Guid.NewGuid().ToString("N"));
    private TestSilo? _silo;

    private TestSilo Silo => _silo!;

    private string ChattyDirectory => Path.Combine(_models, Chatty);

    public async Task InitializeAsync()
    {
        Gpt2ModelBuilder.WriteModelDirectory(Path.Combine(_models, Tiny), ModelShape.Tiny);
        Gpt2ModelBuilder.WriteModelDirectory(ChattyDirectory, ModelShape.Tiny, seed: 7);
        await File.WriteAllTextAsync(Path.Combine(ChattyDirectory, GenerationDefaults.FileName), """{"max_tokens": 3, "temperature": 0, "context_length": 64}""");
        await File.WriteAllTextAsync(Path.Combine(ChattyDirectory, ChatTemplate.FileName), ChattyTemplate);
        var (runtime, dataDirectory) = await fixture.CreateDatabaseAsync();
        _silo = await TestSilo.StartAsync(runtime, dataDirectory, new Dictionary<string, string?>
        {
            ["Bastion:Inference:ExecutionProvider"] = "Cpu",
            ["Bastion:Inference:Models:0:Name"] = Tiny,
            ["Bastion:Inference:Models:0:Directory"] = Path.Combine(_models, Tiny),
            ["Bastion:Inference:Models:0:Sha256"] = InferenceRegistration.DefaultModelSha256,
            ["Bastion:Inference:Models:1:Name"] = Chatty,
            ["Bastion:Inference:Models:1:Directory"] = ChattyDirectory,
            ["Bastion:Inference:Models:1:Sha256"] = ModelDirectory.Read(ChattyDirectory).Digest,
        });
    }

    public async Task DisposeAsync()
    {
        if (_silo is not null)
        {
            await _silo.DisposeAsync();
        }

        Directory.Delete(_models, recursive: true);
    }

    [Fact]
    public async Task Models_TwoConfiguredDirectories_AreBothListed()
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models", Silo.AdminKey));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal([Chatty, Tiny], json.RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task ChatCompletion_UsesTheModelsTemplateAndGenerationDefaults()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("chat-template-" + Guid.NewGuid().ToString("N"), "user");

        // No max_tokens and no temperature: the model's generation.json says 3 tokens, greedy.
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/chat/completions", apiKey, new
        {
            model = Chatty,
            messages = new[] { new { role = "system", content = "Be brief." }, new { role = "user", content = "Hello!" } },
        }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var tokenizer = TextTokenizer.CreateGpt2();
        var prompt = tokenizer.EncodeToIds("### Conversation\nSystem: Be brief.\nUser: Hello!\nAssistant:");
        var usage = json.RootElement.GetProperty("usage");
        Assert.Equal(prompt.Length, usage.GetProperty("prompt_tokens").GetInt32());

        // The text is what the model produces greedily from exactly that prompt.
        var expected = FullSequenceReference.GreedyTokens(Path.Combine(ChattyDirectory, "model.onnx"), prompt, 3, DecoderModel.DefaultEosTokenId);
        Assert.Equal(expected.Count, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(tokenizer.Decode(expected), json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Completion_MaxTokensBeyondTheContextLengthOfGenerationJson_Is400()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("context-" + Guid.NewGuid().ToString("N"), "user");

        // chatty's generation.json sets 64 tokens, far below the 1024 its model.onnx records.
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Chatty, prompt = "hi", max_tokens = 64 }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("context-length-exceeded", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_ForAdminsOnly_CountRequestsTokensLatencyRefusalsAndProviders()
    {
        var id = "metrics-" + Guid.NewGuid().ToString("N");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        using (var limits = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", Silo.AdminKey,
            new { requests = new { algorithm = "fixed_window", limit = 1, window_seconds = 3600 } })))
        {
            Assert.Equal(HttpStatusCode.OK, limits.StatusCode);
        }

        using (var completion = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Tiny, prompt = "Hello", max_tokens = 4, temperature = 0 })))
        {
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        using (var refused = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Tiny, prompt = "Hello", max_tokens = 4 })))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }

        using var anonymous = await Silo.Http.GetAsync("/metrics");
        using var asUser = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/metrics", apiKey));
        using var asAdmin = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/metrics", Silo.AdminKey));

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, asUser.StatusCode);
        Assert.Equal(HttpStatusCode.OK, asAdmin.StatusCode);
        Assert.StartsWith("text/plain", asAdmin.Content.Headers.ContentType!.MediaType, StringComparison.Ordinal);
        var text = await asAdmin.Content.ReadAsStringAsync();
        var lines = text.Split('\n');
        Assert.Contains("bastion_model_info{otel_scope_name=\"Bastion\",model=\"tiny\",provider=\"cpu\"} 1", lines);
        Assert.Contains("bastion_model_info{otel_scope_name=\"Bastion\",model=\"chatty\",provider=\"cpu\"} 1", lines);
        // The OpenTelemetry exporter names the meter in a first label, otel_scope_name, on every series.
        Assert.Contains("# TYPE bastion_http_requests_total counter", lines);
        Assert.Contains(lines, line => line.StartsWith("bastion_http_requests_total{otel_scope_name=\"Bastion\",method=\"POST\",route=\"/v1/completions\",status=\"200\"} ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.StartsWith("bastion_http_requests_total{otel_scope_name=\"Bastion\",method=\"POST\",route=\"/v1/completions\",status=\"429\"} ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.StartsWith("bastion_http_requests_total{otel_scope_name=\"Bastion\",method=\"GET\",route=\"/metrics\",status=\"403\"} ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.StartsWith("bastion_rate_limit_refusals_total{otel_scope_name=\"Bastion\",limit=\"requests\"} ", StringComparison.Ordinal));
        Assert.True(Value(lines, "bastion_prompt_tokens_total{otel_scope_name=\"Bastion\",model=\"tiny\"}") >= 1);
        Assert.True(Value(lines, "bastion_completion_tokens_total{otel_scope_name=\"Bastion\",model=\"tiny\"}") >= 1);
        Assert.True(Value(lines, "bastion_time_to_first_token_seconds_count{otel_scope_name=\"Bastion\",model=\"tiny\"}") >= 1);
        Assert.Contains(lines, line => line.StartsWith("bastion_time_to_first_token_seconds_bucket{otel_scope_name=\"Bastion\",model=\"tiny\",le=\"+Inf\"} ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.StartsWith("bastion_inter_token_latency_seconds_count{otel_scope_name=\"Bastion\",model=\"tiny\"} ", StringComparison.Ordinal));

        // The OpenTelemetry generative-AI instruments, with their semantic-convention attributes.
        const string GenAi = "otel_scope_name=\"Bastion\",gen_ai_operation_name=\"text_completion\",gen_ai_provider_name=\"bastion\",gen_ai_request_model=\"tiny\"";
        Assert.True(Value(lines, "gen_ai_client_token_usage_sum{" + GenAi + ",gen_ai_token_type=\"output\"}") >= 1);
        Assert.True(Value(lines, "gen_ai_client_token_usage_sum{" + GenAi + ",gen_ai_token_type=\"input\"}") >= 1);
        Assert.True(Value(lines, "gen_ai_server_time_to_first_token_seconds_count{" + GenAi + "}") >= 1);
        Assert.True(Value(lines, "gen_ai_server_request_duration_seconds_count{" + GenAi + "}") >= 1);
        Assert.True(Value(lines, "gen_ai_server_time_per_output_token_seconds_count{" + GenAi + "}") >= 1);

        // Labels never carry who asked or what they asked.
        Assert.DoesNotContain(id, text, StringComparison.Ordinal);
        Assert.DoesNotContain("Hello", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Readiness_AdminDetails_NameEachModelsProviderAndTheRuntimeThreading()
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/readyz", Silo.AdminKey));

        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var models = json.RootElement.GetProperty("checks").GetProperty("models");
        Assert.Equal("Cpu", models.GetProperty(Tiny).GetString());
        Assert.Equal("Cpu", models.GetProperty(Chatty).GetString());
        Assert.Equal("Cpu", models.GetProperty("runtime.execution_provider").GetString());
        Assert.Equal("1", models.GetProperty("runtime.intra_op_threads").GetString());
        Assert.Equal("false", models.GetProperty("runtime.allow_spinning").GetString());
    }

    private static double Value(string[] lines, string series) =>
        double.Parse(lines.Single(line => line.StartsWith(series + " ", StringComparison.Ordinal))[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
}
