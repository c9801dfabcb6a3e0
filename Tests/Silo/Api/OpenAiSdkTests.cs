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
}
