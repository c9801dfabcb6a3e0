using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bastion.Generation;

/// <summary>
/// How a model's chat messages become one prompt (<c>chat_template.json</c>, a deliberately simple format with no
/// code in it): <c>begin</c>, then each message as its role's <c>prefix</c>, its content and its role's
/// <c>suffix</c>, then <c>generation_prefix</c>, after which the model writes the assistant's answer.
/// </summary>
public sealed class ChatTemplate
{
    public const string FileName = "chat_template.json";

    private readonly IReadOnlyDictionary<string, RoleFormat> _roles;

    private ChatTemplate(string begin, IReadOnlyDictionary<string, RoleFormat> roles, string generationPrefix)
    {
        Begin = begin;
        _roles = roles;
        GenerationPrefix = generationPrefix;
    }

    /// <summary>The roles a message may have; a template defines each of them.</summary>
    public static IReadOnlySet<string> Roles { get; } = new HashSet<string>(["system", "user", "assistant"], StringComparer.Ordinal);

    /// <summary>
    /// The default model's template: each message as <c>&lt;|role|&gt;</c>, a newline, its content and a newline,
    /// then <c>&lt;|assistant|&gt;</c> and a newline for the model to continue.
    /// </summary>
    public static ChatTemplate Default { get; } = new(
        string.Empty,
        Roles.ToDictionary(role => role, role => new RoleFormat($"<|{role}|>\n", "\n"), StringComparer.Ordinal),
        "<|assistant|>\n");

    /// <summary>Text at the very start of the prompt (a beginning-of-sequence marker, say).</summary>
    public string Begin { get; }

    /// <summary>What follows the last message, so that the model continues as the assistant.</summary>
    public string GenerationPrefix { get; }

    /// <summary>The prompt for <paramref name="messages"/> in order.</summary>
    public string Render(IEnumerable<PromptMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var prompt = new StringBuilder(Begin);
        foreach (var message in messages)
        {
            var format = _roles.TryGetValue(message.Role, out var known)
                ? known
                : throw new ArgumentException($"The role '{message.Role}' is not one of {string.Join(", ", Roles)}.", nameof(messages));
            prompt.Append(format.Prefix).Append(message.Content).Append(format.Suffix);
        }

        return prompt.Append(GenerationPrefix).ToString();
    }

    /// <summary>Parses <c>chat_template.json</c>; throws <see cref="InvalidDataException"/> saying what is wrong.</summary>
    public static ChatTemplate Parse(ReadOnlySpan<byte> json)
    {
        TemplateFile file;
        try
        {
            file = JsonSerializer.Deserialize<TemplateFile>(json, ModelFileJson.Options)
                ?? throw new InvalidDataException("it is empty (null).");
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException(exception.Message, exception);
        }

        if (file.Roles is not { } roles || Roles.FirstOrDefault(role => !roles.ContainsKey(role)) is { } missing)
        {
            throw new InvalidDataException($"'roles' must define {string.Join(", ", Roles)}.");
        }

        if (roles.Keys.FirstOrDefault(role => !Roles.Contains(role)) is { } unknown)
        {
            throw new InvalidDataException($"'roles' has the unknown role '{unknown}'; the roles are {string.Join(", ", Roles)}.");
        }

        if (roles.FirstOrDefault(pair => pair.Value is null).Key is { } empty)
        {
            throw new InvalidDataException($"'roles.{empty}' must be an object with 'prefix' and 'suffix'.");
        }

        var formats = roles.ToDictionary(pair => pair.Key, pair => new RoleFormat(pair.Value.Prefix ?? string.Empty, pair.Value.Suffix ?? string.Empty), StringComparer.Ordinal);
        return new ChatTemplate(file.Begin ?? string.Empty, formats, file.GenerationPrefix ?? string.Empty);
    }

    /// <summary>This template as <c>chat_template.json</c> text.</summary>
    public string ToJson() => JsonSerializer.Serialize(
        new TemplateFile(Begin, Roles.ToDictionary(role => role, role => new RoleFile(_roles[role].Prefix, _roles[role].Suffix), StringComparer.Ordinal), GenerationPrefix),
        ModelFileJson.Indented);

    private sealed record RoleFormat(string Prefix, string Suffix);

    private sealed record TemplateFile(string? Begin, Dictionary<string, RoleFile>? Roles, string? GenerationPrefix);

    private sealed record RoleFile(string? Prefix, string? Suffix);
}

/// <summary>How the JSON files of a model directory are read: snake_case, and a misspelt member is an error, not ignored.</summary>
internal static class ModelFileJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        AllowTrailingCommas = false,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        AllowDuplicateProperties = false,
    };

    public static JsonSerializerOptions Indented { get; } = new(Options)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
