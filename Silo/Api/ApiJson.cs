using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bastion.Api;

public sealed record TokenRequest(string? ApiKey);

public sealed record TokenResponse(string AccessToken, string TokenType, int ExpiresIn);

/// <summary>The fields <c>/v1/completions</c> and <c>/v1/chat/completions</c> share (<c>top_k</c> is an extension).</summary>
public interface IGenerationParameters
{
    string? Model { get; }

    int? MaxTokens { get; }

    bool? Stream { get; }

    int? N { get; }

    float? Temperature { get; }

    float? TopP { get; }

    int? TopK { get; }

    long? Seed { get; }

    JsonElement? Stop { get; }

    StreamOptions? StreamOptions { get; }

    float? PresencePenalty { get; }

    float? FrequencyPenalty { get; }

    /// <summary>How many alternatives each token's log probability lists; null for no log probabilities.</summary>
    int? LogprobAlternatives { get; }

    /// <summary>Members the record does not name: checked against the fields Bastion refuses (<see cref="UnsupportedFields"/>).</summary>
    Dictionary<string, JsonElement>? Extra { get; }
}

public sealed record StreamOptions(bool? IncludeUsage);

/// <summary>A <c>/v1/completions</c> body; <c>logprobs</c> is the legacy count of alternatives (0–5).</summary>
public sealed record CompletionRequest(
    string? Model, string? Prompt, int? MaxTokens, bool? Stream, int? N,
    float? Temperature = null, float? TopP = null, int? TopK = null, long? Seed = null, JsonElement? Stop = null, StreamOptions? StreamOptions = null,
    int? Logprobs = null, float? PresencePenalty = null, float? FrequencyPenalty = null)
    : IGenerationParameters
{
    int? IGenerationParameters.LogprobAlternatives => Logprobs;

    // Settable, not init: the source generator sets init-only members through the constructor, which extension data cannot use.
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }

    public override string ToString() => $"CompletionRequest {{ Model = {Model}, MaxTokens = {MaxTokens}, Prompt = [redacted] }}";
}

/// <summary>A chat message: <c>content</c> is a string or an array of <c>{"type":"text","text":…}</c> parts.</summary>
public sealed record ChatMessage(string? Role, JsonElement? Content)
{
    public override string ToString() => $"ChatMessage {{ Role = {Role}, Content = [redacted] }}";
}

/// <summary>A <c>/v1/chat/completions</c> body; <c>logprobs</c> is a flag, <c>top_logprobs</c> the count of alternatives (0–20).</summary>
public sealed record ChatCompletionRequest(
    string? Model, IReadOnlyList<ChatMessage>? Messages, int? MaxTokens, bool? Stream, int? N,
    float? Temperature = null, float? TopP = null, int? TopK = null, long? Seed = null, JsonElement? Stop = null, StreamOptions? StreamOptions = null,
    int? MaxCompletionTokens = null, bool? Logprobs = null, int? TopLogprobs = null, float? PresencePenalty = null, float? FrequencyPenalty = null)
    : IGenerationParameters
{
    int? IGenerationParameters.MaxTokens => MaxCompletionTokens ?? MaxTokens;

    int? IGenerationParameters.LogprobAlternatives => Logprobs == true ? TopLogprobs ?? 0 : null;

    // Settable, not init: the source generator sets init-only members through the constructor, which extension data cannot use.
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }

    public override string ToString() => $"ChatCompletionRequest {{ Model = {Model}, MaxTokens = {MaxTokens}, Messages = [redacted] }}";
}

public sealed record CompletionChoice(string Text, int Index, CompletionLogprobs? Logprobs, string FinishReason);

/// <summary>
/// Legacy completions' log probabilities, parallel lists per token; <c>text_offset</c> counts UTF-16 code units from the
/// start of the choice's text.
/// </summary>
public sealed record CompletionLogprobs(
    IReadOnlyList<string> Tokens, IReadOnlyList<float> TokenLogprobs, IReadOnlyList<IReadOnlyDictionary<string, float>> TopLogprobs, IReadOnlyList<int> TextOffset);

/// <summary>A streamed completion choice: <c>finish_reason</c> is null until the last chunk.</summary>
public sealed record CompletionChunkChoice(string Text, int Index, CompletionLogprobs? Logprobs, string? FinishReason);

/// <summary>One <c>text_completion</c> server-sent event; <c>usage</c> only on the usage chunk.</summary>
public sealed record CompletionChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage);

public sealed record ChatResponseMessage(string Role, string Content);

public sealed record ChatChoice(int Index, ChatResponseMessage Message, ChatLogprobs? Logprobs, string FinishReason);

/// <summary>A chat choice's log probabilities: one entry per token of its content.</summary>
public sealed record ChatLogprobs(IReadOnlyList<ChatTokenLogprob> Content, IReadOnlyList<ChatTokenLogprob>? Refusal = null);

/// <summary>One token: its text, log probability, UTF-8 bytes, and the most likely alternatives at its step.</summary>
public sealed record ChatTokenLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprob> TopLogprobs);

public sealed record ChatTopLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes);

public sealed record ChatCompletionResponse(string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage Usage);

public sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content);

public sealed record ChatChunkChoice(int Index, ChatDelta Delta, ChatLogprobs? Logprobs, string? FinishReason);

/// <summary>One <c>chat.completion.chunk</c> server-sent event; <c>usage</c> only on the usage chunk.</summary>
public sealed record ChatCompletionChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage);

/// <summary>The problem an <c>error</c> event carries when a stream fails after it started.</summary>
public sealed record StreamProblem(string Type, string Title, int Status, string Detail, [property: JsonPropertyName("traceId")] string TraceId);

public sealed record Usage(long PromptTokens, long CompletionTokens, long TotalTokens);

public sealed record CompletionResponse(string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices, Usage Usage);

/// <summary>An OpenAI model object, with the context length (prompt plus completion tokens) a request may use.</summary>
public sealed record ModelEntry(string Id, string Object, long Created, string OwnedBy, int ContextLength);

public sealed record ModelList(string Object, IReadOnlyList<ModelEntry> Data);

public sealed record CreateUserRequest(string? Id, IReadOnlyList<string>? Roles);

public sealed record UserResponse(string Id, IReadOnlyList<string> Roles);

public sealed record CreateApiKeyRequest(string? Label, int? ExpiresInDays);

public sealed record ApiKeyResponse(string Id, string ApiKey, string Label, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);

public sealed record RolesRequest(IReadOnlyList<string>? Roles);

public sealed record ApiKeyEntry(string Id, string Label, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, bool Revoked);

public sealed record ProfileResponse(string? Id, IReadOnlyList<string> Roles, bool Suspended, IReadOnlyList<ApiKeyEntry> ApiKeys, long Requests, Usage Usage);

public sealed record UserListEntry(string Id, bool IsAdmin, DateTimeOffset CreatedAt);

public sealed record UserList(IReadOnlyList<UserListEntry> Data, string? Next);

public sealed record AuditEntry(long Seq, DateTimeOffset Time, string? Actor, string Action, string? Target, string Outcome, IReadOnlyDictionary<string, string>? Detail);

public sealed record AuditList(IReadOnlyList<AuditEntry> Data);

public sealed record EmergencyBody(bool? InferenceStopped, bool? ChangesFrozen);

public sealed record PolicyBody(string? Algorithm, long? Limit, long? WindowSeconds);

/// <summary>A user's limits: the request body of <c>PUT /admin/users/{id}/limits</c> (any subset) and its answer (effective limits).</summary>
public sealed record LimitsBody(PolicyBody? Requests, PolicyBody? Tokens, int? Concurrency, long? DailyTokens, long? MonthlyTokens);

/// <summary>A JSON Web Key Set (RFC 7517) of public signing keys.</summary>
public sealed record JsonWebKeySetResponse(IReadOnlyList<PublicJsonWebKey> Keys);

/// <summary>One public key: <c>crv</c>/<c>x</c>/<c>y</c> for EC, <c>n</c>/<c>e</c> for RSA, never a private member.</summary>
public sealed record PublicJsonWebKey(
    string Kty,
    string Use,
    string Kid,
    string Alg,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Crv,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? X,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Y,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? N,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? E);

/// <summary>
/// Source-generated snake_case JSON for every HTTP body (OpenAI's wire convention). A member given twice
/// is refused: parsers disagree on which one wins, so a proxy could vet one value while Bastion used the other.
/// </summary>
[JsonSourceGenerationOptions(
    AllowDuplicateProperties = false,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    NumberHandling = JsonNumberHandling.Strict,
    AllowTrailingCommas = false,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(TokenRequest))]
[JsonSerializable(typeof(EmergencyBody))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(CompletionResponse))]
[JsonSerializable(typeof(CompletionChunk))]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(ChatCompletionResponse))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(StreamProblem))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelEntry))]
[JsonSerializable(typeof(CreateUserRequest))]
[JsonSerializable(typeof(UserResponse))]
[JsonSerializable(typeof(CreateApiKeyRequest))]
[JsonSerializable(typeof(ApiKeyResponse))]
[JsonSerializable(typeof(RolesRequest))]
[JsonSerializable(typeof(ProfileResponse))]
[JsonSerializable(typeof(Usage))]
[JsonSerializable(typeof(UserList))]
[JsonSerializable(typeof(KekList))]
[JsonSerializable(typeof(RewrapStatus))]
[JsonSerializable(typeof(AuditList))]
[JsonSerializable(typeof(LimitsBody))]
[JsonSerializable(typeof(JsonWebKeySetResponse))]
public sealed partial class ApiJsonContext : JsonSerializerContext;

/// <summary>One KEK version and the live data keys it wraps.</summary>
public sealed record KekEntry(int Version, bool Current, bool Available, long DataKeys);

public sealed record KekList(IReadOnlyList<KekEntry> Data);

/// <summary>This silo's re-wrap run (<c>total</c>/<c>done</c>) and the data keys still on older KEK versions cluster-wide (<c>remaining</c>).</summary>
public sealed record RewrapStatus(
    string State, int CurrentKekVersion, long Total, long Done, long Remaining, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error);
