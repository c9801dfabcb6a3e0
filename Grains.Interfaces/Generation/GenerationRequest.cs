namespace Bastion.Generation;

/// <summary>A completion to generate. Holds prompt text, so it redacts itself when printed.</summary>
/// <param name="Model">The model name.</param>
/// <param name="Prompt">The prompt text.</param>
/// <param name="MaxTokens">The most tokens to generate.</param>
[GenerateSerializer, Immutable, Alias("bastion.generation-request")]
public sealed record GenerationRequest(
    [property: Id(0)] string Model,
    [property: Id(1)] string Prompt,
    [property: Id(2)] int MaxTokens)
{
    /// <summary>Prompts never reach a log line.</summary>
    public override string ToString() => $"GenerationRequest {{ Model = {Model}, MaxTokens = {MaxTokens}, Prompt = [redacted] }}";
}
