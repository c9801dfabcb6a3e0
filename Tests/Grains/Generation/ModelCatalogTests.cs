using Bastion.Generation;
using Bastion.Inference;
using Bastion.Tests.Grains.Inference;

namespace Bastion.Tests.Grains.Generation;

[Collection(TinyModelCollection.Name)]
public sealed class ModelCatalogTests(TinyModelFixture fixture)
{
    private const string Model = "tiny";
    private static readonly int[] HelloWorld = [15496, 995];

    [Fact]
    public async Task Generate_UpToMaxTokens_ReportsExactUsageAndLength()
    {
        using var catalog = Catalog();

        var result = await catalog.GenerateAsync(catalog.Prepare(new GenerationRequest(Model, "Hello world", 6)), onText: null, CancellationToken.None);

        Assert.Equal(new TokenUsage(2, 6), result.Usage);
        Assert.Equal("length", result.FinishReason);
        var expected = fixture.Model.GenerateGreedy(HelloWorld, 6, CancellationToken.None).ToList();
        Assert.Equal(TextTokenizer.CreateGpt2().Decode(expected), result.Text);
    }

    [Fact]
    public async Task Generate_ModelEmitsEndOfText_FinishesWithStopAndDoesNotCountIt()
    {
        // Declare the greedy model's third token its end-of-text, so the completion must stop after two.
        var third = fixture.Model.GenerateGreedy(HelloWorld, 3, CancellationToken.None).Last();
        using var catalog = new ModelCatalog(TimeProvider.System);
        catalog.Add(Model, DecoderModel.Load(fixture.ModelBytes, TinyModelFixture.RuntimeOptions, eosTokenId: third));

        var result = await catalog.GenerateAsync(catalog.Prepare(new GenerationRequest(Model, "Hello world", 10)), onText: null, CancellationToken.None);

        Assert.Equal("stop", result.FinishReason);
        Assert.Equal(new TokenUsage(2, 2), result.Usage);
    }

    [Fact]
    public void Prepare_EmptyPrompt_StartsFromEndOfText()
    {
        using var catalog = Catalog();

        var prepared = catalog.Prepare(new GenerationRequest(Model, string.Empty, 2));

        Assert.Equal([50256], prepared.PromptTokens);
    }

    [Fact]
    public void Prepare_UnknownModel_IsRejectedAsModelNotFound()
    {
        using var catalog = Catalog();

        var rejected = Assert.Throws<GenerationRejectedException>(() => catalog.Prepare(new GenerationRequest("gpt-17", "hi", 1)));

        Assert.Equal(GenerationRejectedException.ModelNotFound, rejected.Code);
    }

    [Fact]
    public void Prepare_PromptAndMaxTokensBeyondContext_IsRejectedWithBothCounts()
    {
        using var catalog = Catalog();

        var rejected = Assert.Throws<GenerationRejectedException>(() => catalog.Prepare(new GenerationRequest(Model, "Hello world", 1023)));

        Assert.Equal(GenerationRejectedException.ContextLengthExceeded, rejected.Code);
        Assert.Contains("1025", rejected.Message, StringComparison.Ordinal);
        Assert.Equal(1022, catalog.Prepare(new GenerationRequest(Model, "Hello world", 1022)).MaxNewTokens);
    }

    [Fact]
    public async Task Generate_SameSeed_GivesTheSameTextAndStreamsIt()
    {
        using var catalog = Catalog();
        var request = new GenerationRequest(Model, "Hello world", 12, new SamplingOptions(1, 0.9f, 40, 1234));

        var pieces = new List<string>();
        var first = await catalog.GenerateAsync(catalog.Prepare(request), (piece, _) => { pieces.Add(piece); return ValueTask.CompletedTask; }, CancellationToken.None);
        var second = await catalog.GenerateAsync(catalog.Prepare(request), onText: null, CancellationToken.None);

        Assert.Equal(first, second);
        Assert.Equal(first.Text, string.Concat(pieces));
    }

    [Fact]
    public async Task Generate_StopSequence_EndsWithStopAndLeavesItOut()
    {
        using var catalog = Catalog();
        var greedy = await catalog.GenerateAsync(catalog.Prepare(new GenerationRequest(Model, "Hello world", 8)), onText: null, CancellationToken.None);
        var stop = greedy.Text.Substring(greedy.Text.Length / 2, 2);

        var result = await catalog.GenerateAsync(catalog.Prepare(new GenerationRequest(Model, "Hello world", 8, Stop: [stop])), onText: null, CancellationToken.None);

        Assert.Equal("stop", result.FinishReason);
        Assert.Equal(greedy.Text[..greedy.Text.IndexOf(stop, StringComparison.Ordinal)], result.Text);
        Assert.True(result.Usage.CompletionTokens < 8);
    }

    private ModelCatalog Catalog()
    {
        var catalog = new ModelCatalog(TimeProvider.System);
        catalog.Add(Model, DecoderModel.Load(fixture.ModelBytes, TinyModelFixture.RuntimeOptions));
        return catalog;
    }
}
