using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using Bastion.Generation;
using Bastion.Inference;
using OpenAI;
using OpenAI.Chat;

namespace Bastion.Tests.Silo.Api;

/// <summary>The official OpenAI .NET client talks to Bastion as it would to OpenAI.</summary>
[Collection(SiloCollection.Name)]
public sealed class OpenAiSdkTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task OpenAiClient_CompletesChats_WholeAndStreamed_WithExactUsage()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("sdk-" + Guid.NewGuid().ToString("N"), "user");
        var client = new OpenAIClient(new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(Silo.Http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(Silo.Http),
        }).GetChatClient(Model);
        ChatMessage[] messages = [new SystemChatMessage("Be brief."), new UserChatMessage("Hello!")];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
        var promptTokens = TextTokenizer.CreateGpt2().EncodeToIds(ChatTemplate.Default.Render([new("system", "Be brief."), new("user", "Hello!")])).Length;

        ChatCompletion whole = (await client.CompleteChatAsync(messages, options)).Value;

        Assert.Equal(ChatMessageRole.Assistant, whole.Role);
        Assert.Equal(Model, whole.Model);
        Assert.Equal(promptTokens, whole.Usage.InputTokenCount);
        Assert.InRange(whole.Usage.OutputTokenCount, 1, 12);
        Assert.Equal(whole.Usage.InputTokenCount + whole.Usage.OutputTokenCount, whole.Usage.TotalTokenCount);

        var streamed = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finishReason = null;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }

            usage ??= update.Usage;
            finishReason ??= update.FinishReason;
        }

        Assert.Equal(whole.Content[0].Text, streamed.ToString());
        Assert.Equal(whole.FinishReason, finishReason);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
        Assert.Equal(whole.Usage.TotalTokenCount, usage.TotalTokenCount);
    }

    /// <summary>(what goes wrong, the status, and the OpenAI error type and code the SDK must report): written by hand.</summary>
    public static TheoryData<string, int, string, string> Errors => new()
    {
        { "unknown model", 404, "invalid_request_error", "model_not_found" },
        { "bad key", 401, "authentication_error", "unauthorized" },
        { "no room in the context", 400, "invalid_request_error", "context_length_exceeded" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public async Task OpenAiClient_Errors_CarryTheRealMessageTypeAndCode(string what, int status, string type, string code)
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("sdk-error-" + Guid.NewGuid().ToString("N"), "user");
        var client = new OpenAIClient(new ApiKeyCredential(what == "bad key" ? "bst_not-a-key" : apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(Silo.Http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(Silo.Http),
        }).GetChatClient(what == "unknown model" ? "no-such-model" : Model);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = what == "no room in the context" ? 1_000_000 : 4 };

        var error = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("Hello!")], options));

        Assert.Equal(status, error.Status);
        Assert.Contains(type, error.Message, StringComparison.Ordinal);
        Assert.Contains(code, error.Message, StringComparison.Ordinal);
        var problem = System.Text.Json.JsonDocument.Parse(error.GetRawResponse()!.Content.ToString()).RootElement;
        Assert.Contains(problem.GetProperty("detail").GetString()!, error.Message, StringComparison.Ordinal);
        Assert.Equal(problem.GetProperty("detail").GetString(), problem.GetProperty("error").GetProperty("message").GetString());
        Assert.StartsWith("urn:bastion:problem:", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenAiClient_Logprobs_TopLogprobs_AndPenalties_AreServed()
    {
        var client = await ClientAsync("sdk-logprobs-");
        var options = new ChatCompletionOptions
        {
            Temperature = 0, MaxOutputTokenCount = 8, IncludeLogProbabilities = true, TopLogProbabilityCount = 3, PresencePenalty = 0.5f, FrequencyPenalty = 0.5f,
        };

        ChatCompletion completion = (await client.CompleteChatAsync([new UserChatMessage("Hello!")], options)).Value;

        var tokens = completion.ContentTokenLogProbabilities;
        Assert.Equal(completion.Usage.OutputTokenCount, tokens.Count);
        Assert.Equal(completion.Content[0].Text, string.Concat(tokens.Select(t => t.Token)));
        Assert.All(tokens, token =>
        {
            Assert.Equal(3, token.TopLogProbabilities.Count);
            Assert.InRange(token.TopLogProbabilities.Sum(t => Math.Exp(t.LogProbability)), 0, 1 + 1e-4);
            Assert.Equal(token.TopLogProbabilities[0].LogProbability, token.LogProbability, 4);
            Assert.Equal(Encoding.UTF8.GetBytes(token.Token), token.Utf8Bytes!.Value.ToArray());
        });

        // Streamed, the same tokens arrive with the pieces of text.
        var streamed = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Hello!")], options))
        {
            foreach (var token in update.ContentTokenLogProbabilities)
            {
                streamed.Append(token.Token);
            }
        }

        Assert.Equal(completion.Content[0].Text, streamed.ToString());
    }

    [Fact]
    public async Task OpenAiClient_SeveralChoices_EachHasItsIndex_AndUsageSumsThem()
    {
        var client = await ClientAsync("sdk-n-");
        var body = BinaryContent.Create(BinaryData.FromString(
            $$"""{"model": "{{Model}}", "messages": [{"role": "user", "content": "Hi"}], "n": 3, "max_tokens": 5, "temperature": 0}"""));

        // The typed ChatCompletion reads the first choice only: the protocol method, through the same SDK pipeline, shows them all.
        var result = await client.CompleteChatAsync(body);

        using var json = System.Text.Json.JsonDocument.Parse(result.GetRawResponse().Content.ToString());
        var choices = json.RootElement.GetProperty("choices");
        Assert.Equal([0, 1, 2], choices.EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        // Greedy: every choice is the same, as OpenAI's are at temperature 0.
        Assert.Single(choices.EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()).Distinct());
        ChatCompletion single = (await client.CompleteChatAsync([new UserChatMessage("Hi")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 5 })).Value;
        var usage = json.RootElement.GetProperty("usage");
        Assert.Equal(single.Usage.InputTokenCount, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(3 * single.Usage.OutputTokenCount, usage.GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task OpenAiClient_UnsupportedField_FailsWithAMessageNamingIt()
    {
        var client = await ClientAsync("sdk-unsupported-");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 4, ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() };

        var error = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("Hello!")], options));

        Assert.Equal(400, error.Status);
        Assert.Contains("'response_format' is not supported", error.Message, StringComparison.Ordinal);
        Assert.Contains("response_format", error.Message[error.Message.IndexOf("Parameter", StringComparison.Ordinal)..], StringComparison.Ordinal);
    }

    private async Task<ChatClient> ClientAsync(string userPrefix)
    {
        var apiKey = await Silo.CreateUserWithKeyAsync(userPrefix + Guid.NewGuid().ToString("N"), "user");
        return new OpenAIClient(new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(Silo.Http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(Silo.Http),
        }).GetChatClient(Model);
    }
}
