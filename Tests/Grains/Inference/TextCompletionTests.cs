using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

[Collection(TinyModelCollection.Name)]
public sealed class TextCompletionTests(TinyModelFixture fixture)
{
    private static readonly TextTokenizer Tokenizer = TextTokenizer.CreateGpt2();

    [Fact]
    public void Complete_UpToMaxTokens_ReportsExactUsageAndLength()
    {
        var completion = new TextCompletion(Tokenizer, fixture.Model);

        var result = completion.Complete("Hello world", 6, CancellationToken.None);

        Assert.Equal(2, result.PromptTokens);
        Assert.Equal(6, result.CompletionTokens);
        Assert.Equal("length", result.FinishReason);
        var expected = fixture.Model.GenerateGreedy([15496, 995], 6, CancellationToken.None).ToList();
        Assert.Equal(Tokenizer.Decode(expected), result.Text);
    }

    [Fact]
    public void Complete_ModelEmitsEos_FinishesWithStopAndCountsNoEos()
    {
        // Declare the greedy model's third token its EOS, so the completion must stop after two.
        var third = fixture.Model.GenerateGreedy([15496, 995], 3, CancellationToken.None).Last();
        using var model = DecoderModel.Load(fixture.ModelBytes, TinyModelFixture.RuntimeOptions, eosTokenId: third);

        var result = new TextCompletion(Tokenizer, model).Complete("Hello world", 10, CancellationToken.None);

        Assert.Equal("stop", result.FinishReason);
        Assert.Equal(2, result.CompletionTokens);
        Assert.Equal(Tokenizer.Decode(fixture.Model.GenerateGreedy([15496, 995], 2, CancellationToken.None)), result.Text);
    }

    [Fact]
    public void Complete_EmptyPrompt_StartsFromEndOfText()
    {
        var result = new TextCompletion(Tokenizer, fixture.Model).Complete(string.Empty, 2, CancellationToken.None);

        Assert.Equal(1, result.PromptTokens);
        Assert.Equal(2, result.CompletionTokens);
    }
}
