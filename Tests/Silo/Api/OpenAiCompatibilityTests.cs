using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bastion.Tests.Silo.Api;

/// <summary>OpenAI request fields over plain HTTP: which are refused naming the field, which are accepted; n, penalties, logprobs.</summary>
[Collection(SiloCollection.Name)]
public sealed class OpenAiCompatibilityTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    /// <summary>(route, extra member as JSON, expected status, the field the 400 must name): written by hand, not read from the product.</summary>
    public static TheoryData<string, string, HttpStatusCode, string?> Fields => new()
    {
        { "chat", "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}]", HttpStatusCode.BadRequest, "tools" },
        { "chat", "\"tool_choice\": \"auto\"", HttpStatusCode.BadRequest, "tool_choice" },
        { "chat", "\"functions\": [{\"name\": \"f\"}]", HttpStatusCode.BadRequest, "functions" },
        { "chat", "\"function_call\": \"auto\"", HttpStatusCode.BadRequest, "function_call" },
        { "chat", "\"parallel_tool_calls\": true", HttpStatusCode.BadRequest, "parallel_tool_calls" },
        { "chat", "\"response_format\": {\"type\": \"json_object\"}", HttpStatusCode.BadRequest, "response_format" },
        { "chat", "\"logit_bias\": {\"50256\": -100}", HttpStatusCode.BadRequest, "logit_bias" },
        { "chat", "\"audio\": {\"voice\": \"alloy\", \"format\": \"wav\"}", HttpStatusCode.BadRequest, "audio" },
        { "chat", "\"modalities\": [\"text\", \"audio\"]", HttpStatusCode.BadRequest, "modalities" },
        { "chat", "\"prediction\": {\"type\": \"content\", \"content\": \"x\"}", HttpStatusCode.BadRequest, "prediction" },
        { "text", "\"best_of\": 3", HttpStatusCode.BadRequest, "best_of" },
        { "text", "\"suffix\": \"end\"", HttpStatusCode.BadRequest, "suffix" },
        { "text", "\"echo\": true", HttpStatusCode.BadRequest, "echo" },
        { "text", "\"logit_bias\": {\"50256\": -100}", HttpStatusCode.BadRequest, "logit_bias" },
        { "chat", "\"n\": 9", HttpStatusCode.BadRequest, "n" },
        { "chat", "\"presence_penalty\": 2.5", HttpStatusCode.BadRequest, "presence_penalty" },
        { "text", "\"frequency_penalty\": -2.1", HttpStatusCode.BadRequest, "frequency_penalty" },
        { "chat", "\"top_logprobs\": 21, \"logprobs\": true", HttpStatusCode.BadRequest, "top_logprobs" },
        { "chat", "\"top_logprobs\": 2", HttpStatusCode.BadRequest, "top_logprobs" },
        { "text", "\"logprobs\": 6", HttpStatusCode.BadRequest, "logprobs" },
        // Null, as SDKs send for fields left unset, and the do-nothing values, are accepted.
        { "chat", "\"tools\": null, \"tool_choice\": null, \"response_format\": null, \"logit_bias\": null", HttpStatusCode.OK, null },
        { "text", "\"echo\": false, \"best_of\": 1, \"suffix\": null, \"logit_bias\": {}", HttpStatusCode.OK, null },
        { "chat", "\"modalities\": [\"text\"]", HttpStatusCode.OK, null },
        // Harmless fields, and fields Bastion does not know, are accepted and ignored.
        { "chat", "\"user\": \"u-1\", \"metadata\": {\"k\": \"v\"}, \"store\": false, \"service_tier\": \"auto\"", HttpStatusCode.OK, null },
        { "chat", "\"stream_options\": null, \"some_future_field\": 1", HttpStatusCode.OK, null },
        { "chat", "\"presence_penalty\": 2, \"frequency_penalty\": -2", HttpStatusCode.OK, null },
        { "chat", "\"n\": 8", HttpStatusCode.OK, null },
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task Request_Field_IsRefusedNamingIt_OrAccepted(string route, string member, HttpStatusCode expected, string? param)
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("oai-field-" + Guid.NewGuid().ToString("N"), "user");
        var (path, body) = route == "chat"
            ? ("/v1/chat/completions", $"{{\"model\": \"{Model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}], \"max_tokens\": 2, {member}}}")
            : ("/v1/completions", $"{{\"model\": \"{Model}\", \"prompt\": \"Hello\", \"max_tokens\": 2, {member}}}");

        using var response = await PostAsync(apiKey, path, body);

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{member}: {(int)response.StatusCode} {text}");
        if (param is not null)
        {
            using var problem = JsonDocument.Parse(text);
            Assert.Equal("urn:bastion:problem:invalid-request", problem.RootElement.GetProperty("type").GetString());
            Assert.Contains($"'{param}'", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Equal(param, problem.RootElement.GetProperty("error").GetProperty("param").GetString());
        }
    }

    [Theory]
    [InlineData("[{\"type\": \"text\", \"text\": \"Hel\"}, {\"type\": \"text\", \"text\": \"lo\"}]", HttpStatusCode.OK, null)]
    [InlineData("[{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"https://x/y.png\"}}]", HttpStatusCode.BadRequest, "messages[0].content[1]")]
    [InlineData("[{\"type\": \"input_audio\", \"input_audio\": {\"data\": \"\", \"format\": \"wav\"}}]", HttpStatusCode.BadRequest, "messages[0].content[0]")]
    [InlineData("[{\"type\": \"text\"}]", HttpStatusCode.BadRequest, "messages[0].content[0]")]
    [InlineData("42", HttpStatusCode.BadRequest, "messages[0].content")]
    public async Task Chat_ContentParts_TextJoined_OtherPartsRefusedNamingThem(string content, HttpStatusCode expected, string? param)
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("oai-parts-" + Guid.NewGuid().ToString("N"), "user");

        using var response = await PostAsync(apiKey, "/v1/chat/completions",
            $"{{\"model\": \"{Model}\", \"messages\": [{{\"role\": \"user\", \"content\": {content}}}], \"max_tokens\": 2}}");

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, text);
        if (param is not null)
        {
            using var problem = JsonDocument.Parse(text);
            Assert.Equal(param, problem.RootElement.GetProperty("error").GetProperty("param").GetString());
            Assert.Contains(param, problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Chat_TextParts_GiveTheSameAnswerAsTheJoinedString()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("oai-parts-same-" + Guid.NewGuid().ToString("N"), "user");
        const string Parts = "[{\"type\": \"text\", \"text\": \"Hello\"}, {\"type\": \"text\", \"text\": \"there\"}]";

        var fromParts = await ChatAsync(apiKey, $"\"messages\": [{{\"role\": \"user\", \"content\": {Parts}}}], \"max_tokens\": 6, \"temperature\": 0");
        var fromString = await ChatAsync(apiKey, "\"messages\": [{\"role\": \"user\", \"content\": \"Hello\\nthere\"}], \"max_tokens\": 6, \"temperature\": 0");

        Assert.Equal(fromString["usage"]!.ToJsonString(), fromParts["usage"]!.ToJsonString());
        Assert.Equal(Content(fromString, 0), Content(fromParts, 0));
    }

    [Fact]
    public async Task Chat_NChoices_SeededChoicesDiffer_AreReproducible_AndUsageSumsTheChoices()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("oai-n-" + Guid.NewGuid().ToString("N"), "user");
        const string Body = "\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 12, \"n\": 3, \"temperature\": 1.5, \"seed\": 77";

        var first = await ChatAsync(apiKey, Body);
        var again = await ChatAsync(apiKey, Body);

        var choices = first["choices"]!.AsArray();
        Assert.Equal([0, 1, 2], choices.Select(c => c!["index"]!.GetValue<int>()));
        Assert.Equal(3, choices.Select(c => c!["message"]!["content"]!.GetValue<string>()).Distinct().Count());
        Assert.Equal(first["choices"]!.ToJsonString(), again["choices"]!.ToJsonString());

        // Usage: the prompt once, every choice's tokens; each choice's count is its text's token count or fewer (end of text).
        var usage = first["usage"]!;
        var single = await ChatAsync(apiKey, "\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 1");
        Assert.Equal(single["usage"]!["prompt_tokens"]!.GetValue<int>(), usage["prompt_tokens"]!.GetValue<int>());
        var tokenizer = Bastion.Inference.TextTokenizer.CreateGpt2();
        var completion = usage["completion_tokens"]!.GetValue<int>();
        Assert.InRange(completion, choices.Sum(c => c!["finish_reason"]!.GetValue<string>() == "length" ? 12 : 1), 36);
        Assert.Equal(usage["prompt_tokens"]!.GetValue<int>() + completion, usage["total_tokens"]!.GetValue<int>());
        Assert.All(choices.Where(c => c!["finish_reason"]!.GetValue<string>() == "length"), c => Assert.True(tokenizer.EncodeToIds(c!["message"]!["content"]!.GetValue<string>()).Length <= 12 + 2));
    }

    [Fact]
    public async Task Chat_NChoices_Streamed_CarryEachIndex_AndMatchTheWholeAnswer()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("oai-n-stream-" + Guid.NewGuid().ToString("N"), "user");
        const string Body = "\"messages\": [{\"role\": \"user\", \"content\": \"Once upon\"}], \"max_tokens\": 10, \"n\": 2, \"temperature\": 1, \"seed\": 5, \"logprobs\": true, \"top_logprobs\": 2";

        var whole = await ChatAsync(apiKey, Body);
        var texts = new[] { new StringBuilder(), new StringBuilder() };
        var logprobTokens = new[] { new StringBuilder(), new StringBuilder() };
        var finishes = new string?[2];
        JsonNode? usage = null;
        foreach (var chunk in await StreamAsync(apiKey, "/v1/chat/completions", $"{{\"model\": \"{Model}\", {Body}, \"stream\": true, \"stream_options\": {{\"include_usage\": true}}}}"))
        {
            usage ??= chunk["usage"];
            foreach (var choice in chunk["choices"]!.AsArray())
            {
                var index = choice!["index"]!.GetValue<int>();
                texts[index].Append(choice["delta"]!["content"]?.GetValue<string>());
                finishes[index] ??= choice["finish_reason"]?.GetValue<string>();
                foreach (var entry in choice["logprobs"]?["content"]?.AsArray() ?? [])
                {
                    logprobTokens[index].Append(entry!["token"]!.GetValue<string>());
                }
            }
        }

        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(Content(whole, i), texts[i].ToString());
            Assert.Equal(Content(whole, i), logprobTokens[i].ToString());
            Assert.Equal(whole["choices"]![i]!["finish_reason"]!.GetValue<string>(), finishes[i]);
        }

        Assert.Equal(whole["usage"]!.ToJsonString(), usage!.ToJsonString());
    }

    [Fact]
    public async Task Chat_Logprobs_EntriesSpellTheText_TopAlternativesSumToAtMostOne_ChosenAmongThemWhenGreedy()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("oai-logprobs-" + Guid.NewGuid().ToString("N"), "user");

        var response = await ChatAsync(apiKey, "\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], \"max_tokens\": 8, \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 5");

        var choice = response["choices"]![0]!;
        var entries = choice["logprobs"]!["content"]!.AsArray();
        Assert.Equal(response["usage"]!["completion_tokens"]!.GetValue<int>(), entries.Count);
        Assert.Equal(Content(response, 0), string.Concat(entries.Select(e => e!["token"]!.GetValue<string>())));
        foreach (var entry in entries)
        {
            var top = entry!["top_logprobs"]!.AsArray();
            Assert.Equal(5, top.Count);
            Assert.InRange(top.Sum(t => Math.Exp(t!["logprob"]!.GetValue<double>())), 0, 1 + 1e-4);
            // Greedy: the chosen token is the likeliest, so its log probability is the first alternative's.
            Assert.Equal(top[0]!["logprob"]!.GetValue<double>(), entry["logprob"]!.GetValue<double>(), 5);
            Assert.Equal(Encoding.UTF8.GetBytes(entry["token"]!.GetValue<string>()).Select(b => (int)b), entry["bytes"]!.AsArray().Select(b => b!.GetValue<int>()));
        }
    }

    [Fact]
    public async Task Completion_LegacyLogprobs_ParallelListsSpellTheText_WithOffsets()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("oai-legacy-logprobs-" + Guid.NewGuid().ToString("N"), "user");

        using var response = await PostAsync(apiKey, "/v1/completions", $"{{\"model\": \"{Model}\", \"prompt\": \"Hello\", \"max_tokens\": 6, \"temperature\": 0, \"logprobs\": 3}}");

        var root = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var choice = root["choices"]![0]!;
        var logprobs = choice["logprobs"]!;
        var tokens = logprobs["tokens"]!.AsArray().Select(t => t!.GetValue<string>()).ToList();
        Assert.Equal(choice["text"]!.GetValue<string>(), string.Concat(tokens));
        Assert.Equal(tokens.Count, logprobs["token_logprobs"]!.AsArray().Count);
        var offsets = logprobs["text_offset"]!.AsArray().Select(o => o!.GetValue<int>()).ToList();
        Assert.Equal(tokens.Select((_, i) => tokens.Take(i).Sum(t => t.Length)), offsets);
        Assert.All(logprobs["top_logprobs"]!.AsArray(), top => Assert.InRange(top!.AsObject().Count, 1, 3));
    }

    private async Task<HttpResponseMessage> PostAsync(string apiKey, string path, string body)
    {
        var request = TestSilo.Request(HttpMethod.Post, path, apiKey);
        request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        return await Silo.Http.SendAsync(request);
    }

    private async Task<JsonNode> ChatAsync(string apiKey, string members)
    {
        using var response = await PostAsync(apiKey, "/v1/chat/completions", $"{{\"model\": \"{Model}\", {members}}}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!;
    }

    private async Task<List<JsonNode>> StreamAsync(string apiKey, string path, string body)
    {
        using var response = await PostAsync(apiKey, path, body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chunks = new List<JsonNode>();
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (line.StartsWith("data: {", StringComparison.Ordinal))
            {
                chunks.Add(JsonNode.Parse(line["data: ".Length..])!);
            }
        }

        return chunks;
    }

    private static string Content(JsonNode response, int choice) => response["choices"]![choice]!["message"]!["content"]!.GetValue<string>();
}
