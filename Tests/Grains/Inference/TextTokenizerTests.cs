using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

public sealed class TextTokenizerTests
{
    private static readonly TextTokenizer Tokenizer = TextTokenizer.CreateGpt2();

    [Fact]
    public void EncodeToIds_HelloWorld_GivesGpt2Ids() =>
        Assert.Equal([15496, 995], Tokenizer.EncodeToIds("Hello world"));

    [Fact]
    public void CountTokens_FixedSentence_MatchesGpt2()
    {
        const string Text = "The quick brown fox jumps over the lazy dog.";

        Assert.Equal(10, Tokenizer.CountTokens(Text));
        Assert.Equal(10, Tokenizer.EncodeToIds(Text).Length);
    }

    [Theory]
    [InlineData("Hello world")]
    [InlineData("  leading spaces, tabs\tand\nnewlines")]
    [InlineData("Unicode: café, naïve, 日本語, emoji 🚀")]
    public void Decode_OfEncode_RoundTrips(string text) =>
        Assert.Equal(text, Tokenizer.Decode(Tokenizer.EncodeToIds(text)));

    [Fact]
    public void EndOfTextId_IsGpt2Eos() => Assert.Equal(50256, Tokenizer.EndOfTextId);
}
