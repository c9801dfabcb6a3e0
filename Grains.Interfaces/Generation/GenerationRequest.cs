namespace Bastion.Generation;

/// <summary>A completion to generate. Holds prompt text, so it redacts itself when printed.</summary>
/// <param name="Model">The model name.</param>
/// <param name="Prompt">The prompt text.</param>
/// <param name="MaxTokens">The most tokens to generate.</param>
/// <param name="Sampling">How tokens are chosen; <see langword="null"/> means greedy.</param>
/// <param name="Stop">Up to four strings that end the completion when it produces one; the stop string is not part of the text.</param>
[GenerateSerializer, Immutable, Alias("bastion.generation-request")]
public sealed record GenerationRequest(
    [property: Id(0)] string Model,
    [property: Id(1)] string Prompt,
    [property: Id(2)] int MaxTokens,
    [property: Id(3)] SamplingOptions? Sampling = null,
    [property: Id(4)] IReadOnlyList<string>? Stop = null)
{
    /// <summary>Prompts never reach a log line.</summary>
    public override string ToString() => $"GenerationRequest {{ Model = {Model}, MaxTokens = {MaxTokens}, Sampling = {Sampling}, Prompt = [redacted] }}";
}
