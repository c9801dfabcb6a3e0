using Bastion.Generation;

namespace Bastion.Tests.Grains.Generation;

public sealed class CompletionTextTests
{
    // Each "token" is one character of this alphabet, so the tests read as text.
    private const string Alphabet = "abcdefgh END\uFFFDé";

    [Fact]
    public void Add_StopSequence_CutsTheTextBeforeItAndStops()
    {
        var text = Text(["END"]);
        var pieces = Feed(text, "ab END cd");

        Assert.True(text.Stopped);
        Assert.Equal("ab ", text.Text);
        Assert.Equal("ab ", string.Concat(pieces));
    }

    [Fact]
    public void Add_PossibleStopPrefix_IsHeldBackThenReleased()
    {
        var text = Text(["END"]);

        Assert.Equal("a", text.Add(Alphabet.IndexOf('a')));
        Assert.Equal(string.Empty, text.Add(Alphabet.IndexOf('E')));
        Assert.Equal(string.Empty, text.Add(Alphabet.IndexOf('N')));
        Assert.Equal("ENb", text.Add(Alphabet.IndexOf('b')));
        Assert.False(text.Stopped);
    }

    [Fact]
    public void Finish_ReleasesTheHeldBackTail()
    {
        var text = Text(["END"]);
        var pieces = Feed(text, "abEN");
        pieces.Add(text.Finish());

        Assert.Equal("abEN", string.Concat(pieces));
        Assert.Equal("abEN", text.Text);
    }

    [Fact]
    public void Add_IncompleteCharacter_IsHeldBackUntilItCompletes()
    {
        var text = Text([]);

        Assert.Equal("a", text.Add(Alphabet.IndexOf('a')));
        Assert.Equal(string.Empty, text.Add(Alphabet.IndexOf('\uFFFD')));
    }

    [Fact]
    public void Add_RealTokensSplittingCharacters_ConcatenateToTheWholeDecode()
    {
        var tokenizer = Bastion.Inference.TextTokenizer.CreateGpt2();
        var tokens = tokenizer.EncodeToIds("Grüße 😀 日本語のテキスト, and ✓ done");
        var text = new CompletionText(tokenizer.Decode, []);

        var pieces = tokens.Select(text.Add).ToList();
        pieces.Add(text.Finish());

        Assert.Equal(tokenizer.Decode(tokens), string.Concat(pieces));
        Assert.DoesNotContain(pieces, piece => piece.Contains('\uFFFD', StringComparison.Ordinal));
        Assert.True(tokens.Length > pieces.Count(piece => piece.Length > 0), "some characters should span several tokens");
    }

    private static CompletionText Text(IReadOnlyList<string> stops) =>
        new(tokens => string.Concat(tokens.Select(t => Alphabet[t])), stops);

    private static List<string> Feed(CompletionText text, string characters)
    {
        var pieces = new List<string>();
        foreach (var c in characters)
        {
            if (text.Stopped)
            {
                break;
            }

            pieces.Add(text.Add(Alphabet.IndexOf(c)));
        }

        return pieces;
    }
}
