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

    [Fact]
    public void TakeTokenTexts_HeldBackAndCutText_HasNoEntries_AndEntriesConcatenateToTheText()
    {
        // Tokens of several characters, written by hand: "cE" straddles the stop "END", "ND" lies wholly after it.
        string[] vocabulary = ["ab", "cE", "ND", "x"];
        var text = new CompletionText(tokens => string.Concat(tokens.Select(t => vocabulary[t])), ["END"]);

        Assert.Equal("ab", text.Add(0));
        Assert.Equal(["ab"], text.TakeTokenTexts());

        // "E" may start the stop: "c" goes out, but the token is not whole yet, so it has no entry.
        Assert.Equal("c", text.Add(1));
        Assert.Empty(text.TakeTokenTexts());

        Assert.Equal(string.Empty, text.Add(2));
        Assert.True(text.Stopped);
        Assert.Equal("abc", text.Text);
        Assert.Equal(["c"], text.TakeTokenTexts());
    }

    [Fact]
    public void TakeTokenTexts_RealTokensSplittingCharacters_OneEntryPerToken_ConcatenatingToTheText()
    {
        var tokenizer = Bastion.Inference.TextTokenizer.CreateGpt2();
        var tokens = tokenizer.EncodeToIds("Grüße 😀 日本語, done");
        var text = new CompletionText(tokenizer.Decode, []);
        var entries = new List<string>();

        foreach (var token in tokens)
        {
            text.Add(token);
            entries.AddRange(text.TakeTokenTexts());
        }

        text.Finish();
        entries.AddRange(text.TakeTokenTexts());

        Assert.Equal(tokens.Length, entries.Count);
        Assert.Equal(text.Text, string.Concat(entries));
        Assert.Contains(string.Empty, entries);
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
