using System.Text.Json;
using Bastion.Inference;

namespace Bastion.Generation;

/// <summary>
/// A model's generation defaults (<c>generation.json</c>): what a request that leaves a field out gets. Every
/// field is optional; a missing one takes OpenAI's default (<see cref="OpenAi"/>).
/// </summary>
/// <param name="MaxTokens">Tokens to generate when the request has no <c>max_tokens</c>.</param>
/// <param name="Temperature">0–2; 0 is greedy.</param>
/// <param name="TopP">(0, 1].</param>
/// <param name="TopK">0 keeps every token.</param>
/// <param name="Stop">Up to four stop strings, used when the request has no <c>stop</c>.</param>
/// <param name="EosTokenId">The token that ends generation (also fed for an empty prompt).</param>
public sealed record GenerationDefaults(int MaxTokens, float Temperature, float TopP, int TopK, IReadOnlyList<string> Stop, int EosTokenId)
{
    public const string FileName = "generation.json";

    /// <summary>
    /// The most tokens, prompt plus completion, one sequence may hold (<c>context_length</c>). Optional when
    /// <c>model.onnx</c> records its own (<c>bastion.n_ctx</c>), which it may lower but not raise; a model with
    /// neither is refused, so <c>max_tokens</c> is always bounded.
    /// </summary>
    public int? ContextLength { get; init; }

    /// <summary>The most stop strings a request or a model may have.</summary>
    public const int MaxStopSequences = 4;

    /// <summary>OpenAI's defaults (<c>max_tokens</c> 16, temperature 1, <c>top_p</c> 1), no top-k, no stop strings, GPT-2's end-of-text.</summary>
    public static GenerationDefaults OpenAi { get; } = new(16, 1f, 1f, 0, [], DecoderModel.DefaultEosTokenId);

    /// <summary>
    /// Greedy decoding: what a model added in code (tests, benchmarks) gets, so that a request without sampling
    /// values is reproducible there.
    /// </summary>
    public static GenerationDefaults Greedy { get; } = OpenAi with { Temperature = 0f };

    /// <summary>Parses <c>generation.json</c>; throws <see cref="InvalidDataException"/> saying what is wrong.</summary>
    public static GenerationDefaults Parse(ReadOnlySpan<byte> json)
    {
        DefaultsFile file;
        try
        {
            file = JsonSerializer.Deserialize<DefaultsFile>(json, ModelFileJson.Options) ?? throw new InvalidDataException("it is empty (null).");
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException(exception.Message, exception);
        }

        var defaults = new GenerationDefaults(
            file.MaxTokens ?? OpenAi.MaxTokens,
            file.Temperature ?? OpenAi.Temperature,
            file.TopP ?? OpenAi.TopP,
            file.TopK ?? OpenAi.TopK,
            file.Stop ?? [],
            file.EosTokenId ?? OpenAi.EosTokenId) { ContextLength = file.ContextLength };
        var problem = defaults switch
        {
            { MaxTokens: < 1 } => "'max_tokens' must be at least 1.",
            { Temperature: < 0 or > 2 } => "'temperature' must lie between 0 and 2.",
            { TopP: <= 0 or > 1 } => "'top_p' must be greater than 0 and at most 1.",
            { TopK: < 0 } => "'top_k' must be 0 (no limit) or more.",
            { EosTokenId: < 0 } => "'eos_token_id' must be 0 or more.",
            { ContextLength: < 1 } => "'context_length' must be at least 1.",
            { ContextLength: { } context } when defaults.MaxTokens > context => "'max_tokens' must not exceed 'context_length'.",
            { Stop.Count: > MaxStopSequences } => $"'stop' may hold at most {MaxStopSequences} strings.",
            _ when defaults.Stop.Any(string.IsNullOrEmpty) => "'stop' may hold only non-empty strings.",
            _ => null,
        };
        return problem is null ? defaults : throw new InvalidDataException(problem);
    }

    /// <summary>These defaults as <c>generation.json</c> text.</summary>
    public string ToJson() => JsonSerializer.Serialize(new DefaultsFile(MaxTokens, Temperature, TopP, TopK, [.. Stop], EosTokenId, ContextLength), ModelFileJson.Indented);

    private sealed record DefaultsFile(int? MaxTokens, float? Temperature, float? TopP, int? TopK, List<string>? Stop, int? EosTokenId, int? ContextLength = null);
}
