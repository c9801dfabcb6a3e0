namespace Bastion.Inference;

/// <summary>The hyper-parameters of a GPT-2-architecture decoder.</summary>
/// <param name="VocabSize">Number of token ids; the tied embedding has this many rows.</param>
/// <param name="ContextLength">Number of learned positions; prompt plus completion must fit.</param>
/// <param name="Width">Width of the residual stream (n_embd).</param>
/// <param name="Layers">Number of transformer blocks.</param>
/// <param name="Heads">Number of attention (query) heads; must divide <paramref name="Width"/>.</param>
/// <param name="KeyValueHeads">
/// Number of key/value heads: <paramref name="Heads"/> for GPT-2; fewer for grouped-query attention
/// (Llama/Qwen-style), where each key/value head serves a group of query heads. Null means <paramref name="Heads"/>.
/// </param>
/// <param name="PositionIdsInput">Whether the model takes <c>position_ids</c>; without it, positions follow the attention mask.</param>
public sealed record ModelShape(int VocabSize, int ContextLength, int Width, int Layers, int Heads, int? KeyValueHeads = null, bool PositionIdsInput = true)
{
    /// <summary>The default model: real GPT-2 vocabulary and context, tiny body, so it builds and runs in a blink.</summary>
    public static ModelShape Tiny { get; } = new(50257, 1024, 64, 2, 4);

    /// <summary>The GPT-2 small (124M parameter) shape, for benchmarks.</summary>
    public static ModelShape Gpt2Small { get; } = new(50257, 1024, 768, 12, 12);

    public int HeadSize => Width / Heads;

    /// <summary>The key/value heads in effect.</summary>
    public int KvHeads => KeyValueHeads ?? Heads;

    /// <summary>Throws when the shape cannot describe a working model.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(VocabSize, 1, nameof(VocabSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(ContextLength, 1, nameof(ContextLength));
        ArgumentOutOfRangeException.ThrowIfLessThan(Width, 1, nameof(Width));
        ArgumentOutOfRangeException.ThrowIfLessThan(Layers, 1, nameof(Layers));
        ArgumentOutOfRangeException.ThrowIfLessThan(Heads, 1, nameof(Heads));
        if (Width % Heads != 0)
        {
            throw new ArgumentException($"Width {Width} is not a multiple of Heads {Heads}.", nameof(Heads));
        }

        if (KvHeads < 1 || Heads % KvHeads != 0)
        {
            throw new ArgumentException($"Heads {Heads} is not a multiple of KeyValueHeads {KvHeads}.", nameof(KeyValueHeads));
        }
    }
}
