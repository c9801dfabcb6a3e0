namespace Bastion.Generation;

/// <summary>How the next token is chosen from a step's logits.</summary>
/// <param name="Temperature">Divides the logits before the softmax; 0 means greedy (argmax).</param>
/// <param name="TopP">Nucleus sampling: keep the most likely tokens whose probabilities sum to at least this, in (0, 1].</param>
/// <param name="TopK">Keep only the <c>k</c> most likely tokens; 0 keeps all.</param>
/// <param name="Seed">Seeds the per-request random generator: the same seed and input give the same output.</param>
/// <param name="PresencePenalty">
/// −2..2, OpenAI's <c>presence_penalty</c>: subtracted from the logit of every token generated at least once so far.
/// </param>
/// <param name="FrequencyPenalty">
/// −2..2, OpenAI's <c>frequency_penalty</c>: subtracted, times the number of times it was generated so far, from a token's logit.
/// </param>
[GenerateSerializer, Immutable, Alias("bastion.sampling-options")]
public sealed record SamplingOptions(
    [property: Id(0)] float Temperature,
    [property: Id(1)] float TopP,
    [property: Id(2)] int TopK,
    [property: Id(3)] long Seed,
    [property: Id(4)] float PresencePenalty = 0,
    [property: Id(5)] float FrequencyPenalty = 0)
{
    /// <summary>The most a penalty may be in either direction, as OpenAI allows.</summary>
    public const float MaxPenalty = 2f;

    /// <summary>Greedy decoding: always the most likely token.</summary>
    public static SamplingOptions Greedy { get; } = new(0, 1, 0, 0);
}
