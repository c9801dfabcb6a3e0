using System.Net;
using System.Text;
using System.Text.Json;
using Bastion.Generation;
using Bastion.Inference;

namespace Bastion.Tests.Silo.Api;

/// <summary><c>stream: true</c> on the completion routes: OpenAI's server-sent events, exact usage, disconnects.</summary>
[Collection(SiloCollection.Name)]
public sealed class StreamingApiTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task StreamedCompletion_IsFramedAsOpenAiEventsEndingWithDone()
    {
        var apiKey = await NewUserAsync("sse");

        using var response = await SendAsync("/v1/completions", apiKey, new { model = Model, prompt = "Hello", max_tokens = 8, temperature = 0, stream = true });
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        var events = ParseEvents(body);
        Assert.All(events, e => Assert.Null(e.Event));
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        Assert.All(chunks, c => Assert.Equal(Model, c.GetProperty("model").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
        Assert.Contains(chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString(), new[] { "stop", "length" });
        Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out _)));
    }

    [Theory]
    [InlineData(0.0, null)]
    [InlineData(1.0, 20261126L)]
    public async Task StreamedText_EqualsTheNonStreamedTextAndUsage(double temperature, long? seed)
    {
        var apiKey = await NewUserAsync("same");
        var request = new Dictionary<string, object?> { ["model"] = Model, ["prompt"] = "Once upon a time", ["max_tokens"] = 24, ["temperature"] = temperature, ["seed"] = seed };

        using var whole = await SendAsync("/v1/completions", apiKey, request);
        using var json = JsonDocument.Parse(await whole.Content.ReadAsStringAsync());
        request["stream"] = true;
        request["stream_options"] = new { include_usage = true };
        using var streamed = await SendAsync("/v1/completions", apiKey, request);
        var chunks = ParseEvents(await streamed.Content.ReadAsStringAsync())[..^1].Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();

        var choice = json.RootElement.GetProperty("choices")[0];
        Assert.Equal(choice.GetProperty("text").GetString(), string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal(choice.GetProperty("finish_reason").GetString(), chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(json.RootElement.GetProperty("usage").GetRawText(), usage.GetProperty("usage").GetRawText());
    }

    [Fact]
    public async Task StopSequence_EndsTheCompletionBeforeIt()
    {
        var apiKey = await NewUserAsync("stop");
        var greedy = await TextAsync(apiKey, new { model = Model, prompt = "Hello", max_tokens = 12, temperature = 0 });
        var stop = greedy.Text.Substring(greedy.Text.Length / 2, 2);

        var stopped = await TextAsync(apiKey, new { model = Model, prompt = "Hello", max_tokens = 12, temperature = 0, stop = new[] { stop, "never-produced" } });

        Assert.Equal(greedy.Text[..greedy.Text.IndexOf(stop, StringComparison.Ordinal)], stopped.Text);
        Assert.Equal("stop", stopped.FinishReason);
    }

    [Fact]
    public async Task Seed_SameSeedGivesTheSameText()
    {
        var apiKey = await NewUserAsync("seed");
        var request = new { model = Model, prompt = "Hello", max_tokens = 16, temperature = 1.2, top_p = 0.95, top_k = 50, seed = 7 };

        Assert.Equal((await TextAsync(apiKey, request)).Text, (await TextAsync(apiKey, request)).Text);
    }

    [Fact]
    public async Task ChatCompletion_RendersTheTemplateAndAnswersAsTheAssistant()
    {
        var apiKey = await NewUserAsync("chat");
        var request = new Dictionary<string, object?>
        {
            ["model"] = Model,
            ["messages"] = new[] { new { role = "system", content = "Be brief." }, new { role = "user", content = "Hello!" } },
            ["max_tokens"] = 10,
            ["temperature"] = 0,
        };

        using var whole = await SendAsync("/v1/chat/completions", apiKey, request);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        using var json = JsonDocument.Parse(await whole.Content.ReadAsStringAsync());
        var root = json.RootElement;
        Assert.Equal("chat.completion", root.GetProperty("object").GetString());
        var message = root.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        var prompt = ChatTemplate.Default.Render([new("system", "Be brief."), new("user", "Hello!")]);
        Assert.Equal(TextTokenizer.CreateGpt2().EncodeToIds(prompt).Length, root.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        request["stream"] = true;
        using var streamed = await SendAsync("/v1/chat/completions", apiKey, request);
        var chunks = ParseEvents(await streamed.Content.ReadAsStringAsync())[..^1].Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var content = string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("delta")).Select(d => d.TryGetProperty("content", out var text) ? text.GetString() : null));
        Assert.Equal(message.GetProperty("content").GetString(), content);
        Assert.Equal(root.GetProperty("choices")[0].GetProperty("finish_reason").GetString(), chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task ClientThatDisconnects_StopsTheGeneration()
    {
        // Greedy decoding of this prompt meets no end-of-text, so only the disconnect can stop it short of
        // 1000 tokens. On a starved machine the server can still finish first; a lost race is retried.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var id = "disconnect-" + Guid.NewGuid().ToString("N");
            var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
            using (var response = await SendAsync("/v1/completions", apiKey, new { model = Model, prompt = "Go", max_tokens = 1000, temperature = 0, stream = true }))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                for (var events = 0; events < 2;)
                {
                    var line = await reader.ReadLineAsync();
                    Assert.NotNull(line);
                    events += line.StartsWith("data: ", StringComparison.Ordinal) ? 1 : 0;
                }

                // Disposing closes the connection (the test client never drains a half-read response).
            }

            var completionTokens = await SettledCompletionTokensAsync(id);
            if (completionTokens < 1000)
            {
                Assert.InRange(completionTokens, 1, 999);
                return;
            }
        }

        Assert.Fail("every generation finished before its client disconnected");
    }

    [Fact]
    public async Task Suspension_MidStream_EndsItWithAnErrorEventThenDone()
    {
        // As above, a generation that outruns the suspension is retried, never counted as a pass.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var id = "stream-suspend-" + Guid.NewGuid().ToString("N");
            var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
            using var response = await SendAsync("/v1/completions", apiKey, new { model = Model, prompt = "Go", max_tokens = 1000, temperature = 0, stream = true });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);

            using var suspend = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{id}/suspend", Silo.AdminKey));
            Assert.Equal(HttpStatusCode.NoContent, suspend.StatusCode);
            var events = ParseEvents(await reader.ReadToEndAsync());

            if (events.SingleOrDefault(e => e.Event == "error") is not { } error)
            {
                continue;
            }

            Assert.Equal("[DONE]", events[^1].Data);
            Assert.Equal("error", events[^2].Event);
            using var problem = JsonDocument.Parse(error.Data);
            Assert.Equal("urn:bastion:problem:unauthorized", problem.RootElement.GetProperty("type").GetString());
            Assert.True(problem.RootElement.TryGetProperty("traceId", out _));
            Assert.DoesNotContain("Exception", error.Data, StringComparison.Ordinal);
            return;
        }

        Assert.Fail("every generation finished before its user could be suspended");
    }

    private async Task<long> SettledCompletionTokensAsync(string id)
    {
        while (true)
        {
            using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{id}", Silo.AdminKey));
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var completionTokens = json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt64();
            if (completionTokens > 0)
            {
                return completionTokens;
            }
        }
    }

    private async Task<(string Text, string FinishReason)> TextAsync(string apiKey, object request)
    {
        using var response = await SendAsync("/v1/completions", apiKey, request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var choice = json.RootElement.GetProperty("choices")[0];
        return (choice.GetProperty("text").GetString()!, choice.GetProperty("finish_reason").GetString()!);
    }

    private async Task<HttpResponseMessage> SendAsync(string path, string apiKey, object request) =>
        await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, path, apiKey, request), HttpCompletionOption.ResponseHeadersRead);

    private Task<string> NewUserAsync(string prefix) => Silo.CreateUserWithKeyAsync(prefix + "-" + Guid.NewGuid().ToString("N"), "user");

    private sealed record ServerSentEvent(string? Event, string Data);

    private static ServerSentEvent[] ParseEvents(string body)
    {
        var events = new List<ServerSentEvent>();
        foreach (var block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string? name = null;
            var data = new StringBuilder();
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    name = line["event: ".Length..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    data.Append(line["data: ".Length..]);
                }
            }

            events.Add(new ServerSentEvent(name, data.ToString()));
        }

        Assert.Equal("[DONE]", events[^1].Data);
        return [.. events];
    }
}
