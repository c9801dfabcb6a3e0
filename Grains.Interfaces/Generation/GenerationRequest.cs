namespace Bastion.Generation;

/// <summary>A completion to generate. Holds prompt text, so it redacts itself when printed.</summary>
/// <param name="Model">The model name.</param>
/// <param name="Prompt">The prompt text; ignored when <paramref name="Messages"/> is set.</param>
/// <param name="MaxTokens">The most tokens to generate; <see langword="null"/> takes the model's default (its <c>generation.json</c>).</param>
/// <param name="Sampling">
/// How tokens are chosen, complete; <see langword="null"/> takes each value from <paramref name="Overrides"/> where
/// set, else from the model's generation defaults.
/// </param>
/// <param name="Stop">
/// Up to four strings that end the completion when it produces one; the stop string is not part of the text.
/// <see langword="null"/> takes the model's default stop strings.
/// </param>
/// <param name="Messages">Chat messages, which the worker renders into the prompt with the model's chat template.</param>
/// <param name="Overrides">Sampling values the caller chose; the rest come from the model's defaults.</param>
/// <param name="Choices">How many completions to generate for the prompt (OpenAI's <c>n</c>); <see langword="null"/> is one.</param>
/// <param name="Logprobs">
/// <see langword="null"/>: no log probabilities. Otherwise each generated token carries its log probability and that
/// many of the most likely alternatives (0 to <see cref="MaxTopLogprobs"/>).
/// </param>
/// <remarks>
/// The lists are arrays, not interfaces: silo assertions digest the arguments as serialized, and a compiler-made
/// collection behind <c>IReadOnlyList</c> comes back from the wire as another type, with other bytes, so a request
/// with stop strings was refused whenever the user's grain lived on another silo.
/// </remarks>
[GenerateSerializer, Immutable, Alias("bastion.generation-request")]
public sealed record GenerationRequest(
    [property: Id(0)] string Model,
    [property: Id(1)] string Prompt,
    [property: Id(2)] int? MaxTokens,
    [property: Id(3)] SamplingOptions? Sampling = null,
    [property: Id(4)] string[]? Stop = null,
    [property: Id(5)] PromptMessage[]? Messages = null,
    [property: Id(6)] SamplingOverrides? Overrides = null,
    [property: Id(7)] int? Choices = null,
    [property: Id(8)] int? Logprobs = null)
{
    /// <summary>The most completions one request may ask for.</summary>
    public const int MaxChoices = 8;

    /// <summary>The most alternatives a token's log probability may list, as OpenAI allows.</summary>
    public const int MaxTopLogprobs = 20;

    /// <summary>Prompts never reach a log line.</summary>
    public override string ToString() => $"GenerationRequest {{ Model = {Model}, MaxTokens = {MaxTokens}, Sampling = {Sampling}, Overrides = {Overrides}, Choices = {Choices}, Logprobs = {Logprobs}, Prompt = [redacted] }}";
}

/// <summary>One chat message of a request. Holds prompt text, so it redacts itself when printed.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The message text.</param>
[GenerateSerializer, Immutable, Alias("bastion.prompt-message")]
public sealed record PromptMessage([property: Id(0)] string Role, [property: Id(1)] string Content)
{
    /// <summary>Message text never reaches a log line.</summary>
    public override string ToString() => $"PromptMessage {{ Role = {Role}, Content = [redacted] }}";
}

/// <summary>The sampling values a request set; each one left <see langword="null"/> comes from the model's defaults.</summary>
[GenerateSerializer, Immutable, Alias("bastion.sampling-overrides")]
public sealed record SamplingOverrides(
    [property: Id(0)] float? Temperature = null,
    [property: Id(1)] float? TopP = null,
    [property: Id(2)] int? TopK = null,
    [property: Id(3)] long? Seed = null,
    [property: Id(4)] float? PresencePenalty = null,
    [property: Id(5)] float? FrequencyPenalty = null);
