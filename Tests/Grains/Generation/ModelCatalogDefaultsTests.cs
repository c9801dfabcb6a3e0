using Bastion.Generation;
using Bastion.Inference;
using Bastion.Tests.Grains.Inference;

namespace Bastion.Tests.Grains.Generation;

/// <summary>What a request leaves out comes from the model's generation.json; what it sets wins.</summary>
[Collection(TinyModelCollection.Name)]
public sealed class ModelCatalogDefaultsTests(TinyModelFixture fixture)
{
    private const string Model = "tiny-with-defaults";
    private static readonly GenerationDefaults Defaults = new(5, 0.7f, 0.9f, 40, ["\n\n"], DecoderModel.DefaultEosTokenId);

    [Fact]
    public void Prepare_RequestWithoutValues_TakesTheModelsDefaults()
    {
        using var catalog = Catalog();

        var prepared = catalog.Prepare(new GenerationRequest(Model, "Hello world", MaxTokens: null));

        Assert.Equal(5, prepared.MaxNewTokens);
        Assert.Equal((0.7f, 0.9f, 40), (prepared.Sampling.Temperature, prepared.Sampling.TopP, prepared.Sampling.TopK));
        Assert.Equal(["\n\n"], prepared.Stop);
    }

    [Fact]
    public void Prepare_RequestValues_OverrideTheDefaults()
    {
        using var catalog = Catalog();

        var prepared = catalog.Prepare(new GenerationRequest(Model, "Hello world", 3, Stop: ["."], Overrides: new(Temperature: 0f, TopK: 1, Seed: 99)));

        Assert.Equal(3, prepared.MaxNewTokens);
        Assert.Equal(new SamplingOptions(0f, 0.9f, 1, 99), prepared.Sampling);
        Assert.Equal(["."], prepared.Stop);
    }

    [Fact]
    public void Prepare_DefaultMaxTokensBeyondTheContext_IsRefusedNamingMaxTokens()
    {
        using var catalog = Catalog(Defaults with { MaxTokens = 1024 });

        var rejected = Assert.Throws<GenerationRejectedException>(() => catalog.Prepare(new GenerationRequest(Model, "Hello world", MaxTokens: null)));

        Assert.Equal(GenerationRejectedException.ContextLengthExceeded, rejected.Code);
        Assert.Contains("1024 in 'max_tokens'", rejected.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Prepare_ChatMessages_AreRenderedWithTheModelsTemplate()
    {
        var template = ChatTemplate.Parse("""{"roles": {"system": {"prefix": "S: "}, "user": {"prefix": "Q: ", "suffix": "\n"}, "assistant": {"prefix": "A: ", "suffix": "\n"}}, "generation_prefix": "A:"}"""u8);
        using var catalog = Catalog(template: template);

        var prepared = catalog.Prepare(new GenerationRequest(Model, string.Empty, 2, Messages: [new("user", "Hello world")]));

        Assert.Equal(TextTokenizer.CreateGpt2().EncodeToIds("Q: Hello world\nA:"), prepared.PromptTokens);
    }

    private ModelCatalog Catalog(GenerationDefaults? defaults = null, ChatTemplate? template = null)
    {
        var catalog = new ModelCatalog(TimeProvider.System);
        catalog.Add(Model, DecoderModel.Load(fixture.ModelBytes, TinyModelFixture.RuntimeOptions), defaults ?? Defaults, template);
        return catalog;
    }
}
