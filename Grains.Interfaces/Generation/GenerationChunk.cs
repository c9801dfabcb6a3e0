namespace Bastion.Generation;

/// <summary>A batch of a generation's text, read from its bounded buffer. Holds generated text, so it redacts itself when printed.</summary>
/// <param name="Pieces">Decoded text pieces, in order, starting at the index the reader asked for.</param>
/// <param name="Result">The finished result once every piece has been read; <see langword="null"/> while the generation runs.</param>
[GenerateSerializer, Immutable, Alias("bastion.generation-chunk")]
public sealed record GenerationChunk(
    [property: Id(0)] IReadOnlyList<string> Pieces,
    [property: Id(1)] GenerationResult? Result)
{
    /// <summary>True when this is the last chunk: <see cref="Result"/> holds the finish reason and exact usage.</summary>
    public bool Finished => Result is not null;

    /// <summary>Completions never reach a log line.</summary>
    public override string ToString() => $"GenerationChunk {{ Pieces = {Pieces.Count}, Result = {Result} }}";
}
