namespace Bastion.Generation;

/// <summary>A batch of a generation's text, read from its bounded buffer. Holds generated text, so it redacts itself when printed.</summary>
/// <param name="Pieces">Decoded text pieces, in order, starting at the index the reader asked for.</param>
/// <param name="Result">The finished result once every piece has been read; <see langword="null"/> while the generation runs.</param>
/// <param name="Choices">The choice each piece belongs to, parallel to <paramref name="Pieces"/>; <see langword="null"/> when all are choice 0.</param>
/// <param name="Logprobs">
/// The log probabilities of the tokens each piece completes, parallel to <paramref name="Pieces"/>; <see langword="null"/>
/// when the request asked for none. A piece may be empty and carry entries only.
/// </param>
[GenerateSerializer, Immutable, Alias("bastion.generation-chunk")]
public sealed record GenerationChunk(
    [property: Id(0)] IReadOnlyList<string> Pieces,
    [property: Id(1)] GenerationResult? Result,
    [property: Id(2)] int[]? Choices = null,
    [property: Id(3)] TokenLogprob[]?[]? Logprobs = null)
{
    /// <summary>The choice the piece at <paramref name="index"/> belongs to.</summary>
    public int ChoiceOf(int index) => Choices is { } choices ? choices[index] : 0;

    /// <summary>The log probabilities the piece at <paramref name="index"/> carries, if any.</summary>
    public TokenLogprob[]? LogprobsOf(int index) => Logprobs is { } logprobs ? logprobs[index] : null;

    /// <summary>True when this is the last chunk: <see cref="Result"/> holds the finish reason and exact usage.</summary>
    public bool Finished => Result is not null;

    /// <summary>Completions never reach a log line.</summary>
    public override string ToString() => $"GenerationChunk {{ Pieces = {Pieces.Count}, Result = {Result} }}";
}
