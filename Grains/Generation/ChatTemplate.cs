using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bastion.Inference;

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

    /// <summary>The prompt for <paramref name="messages"/> in order, as text (for reading; <see cref="Encode"/> is what a model gets).</summary>
    public string Render(IEnumerable<PromptMessage> messages) => string.Concat(Segments(messages).Select(segment => segment.Text));

    /// <summary>
    /// The prompt for <paramref name="messages"/> as token ids, so that no message can pass for the template's own
    /// structure (docs/guards.md). First <see cref="EscapeMarkers"/> breaks every plain-text role marker a message
    /// writes; then the prompt is encoded as one text, except that it is cut one character into every control token's
    /// string that touches a message, so only the template's own text ever becomes a control-token id.
    /// </summary>
    public int[] Encode(IEnumerable<PromptMessage> messages, TextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var segments = EscapeMarkers(Segments(messages), PlainMarkers(tokenizer.SpecialTokens));
        return tokenizer.EncodeToIds(string.Concat(segments.Select(segment => segment.Text)), Gaps(segments, tokenizer.SpecialTokens));
    }

    /// <summary>
    /// The template's markers that are plain text, which a message could otherwise write itself: each piece of the
    /// template (begin, a role's prefix or suffix, the generation prefix) without its surrounding white space, unless
    /// it holds a control token. A piece holding one is anchored by it: a message can never produce that token.
    /// </summary>
    public IReadOnlyList<string> PlainMarkers(IReadOnlyList<string> specialTokens)
    {
        ArgumentNullException.ThrowIfNull(specialTokens);
        return [.. _roles.Values.SelectMany(format => new[] { format.Prefix, format.Suffix })
            .Append(Begin).Append(GenerationPrefix)
            .Select(piece => piece.Trim())
            .Where(piece => piece.Length > 1 && !specialTokens.Any(special => piece.Contains(special, StringComparison.Ordinal)))
            .Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Inserted into a message where it writes a marker: U+200B ZERO WIDTH SPACE, in no marker and no control token.</summary>
    public const char MarkerBreak = '\u200B';

    /// <summary>
    /// Makes every occurrence of a marker in the rendered prompt lie wholly inside the template's own text: where one
    /// overlaps a message's content (inside it, or across its edge with the template text beside it),
    /// <see cref="MarkerBreak"/> goes into the content at the first gap of the occurrence that touches content. The
    /// break is in no marker, so inserting it makes none, and each overlapping occurrence gets its own.
    /// </summary>
    public static IReadOnlyList<(string Text, bool Trusted)> EscapeMarkers(IReadOnlyList<(string Text, bool Trusted)> segments, IReadOnlyList<string> markers)
    {
        ArgumentNullException.ThrowIfNull(segments);
        ArgumentNullException.ThrowIfNull(markers);
        if (markers.Any(marker => marker.Contains(MarkerBreak)))
        {
            throw new ArgumentException("A marker holds no zero width space.", nameof(markers));
        }

        var gaps = Gaps(segments, markers);
        if (gaps.Count == 0)
        {
            return segments;
        }

        // Each break goes into the content on the gap's left or, where that is the template's text, on its right.
        var escaped = segments.Select(segment => new StringBuilder(segment.Text)).ToArray();
        var (_, owner, offsets) = Layout(segments);
        foreach (var gap in gaps.Reverse())
        {
            var left = owner[gap - 1];
            if (segments[left].Trusted)
            {
                escaped[owner[gap]].Insert(0, MarkerBreak);
            }
            else
            {
                escaped[left].Insert(gap - offsets[left], MarkerBreak);
            }
        }

        return [.. escaped.Select((builder, index) => (builder.ToString(), segments[index].Trusted))];
    }

    /// <summary>
    /// For each occurrence of a needle in the rendered prompt that is not wholly the template's own text, the first gap
    /// inside it (a position between two characters) with a message's content on one side.
    /// </summary>
    private static SortedSet<int> Gaps(IReadOnlyList<(string Text, bool Trusted)> segments, IReadOnlyList<string> needles)
    {
        var (text, owner, _) = Layout(segments);
        var gaps = new SortedSet<int>();
        foreach (var needle in needles.Where(needle => needle.Length > 1))
        {
            for (var at = text.IndexOf(needle, StringComparison.Ordinal); at >= 0; at = text.IndexOf(needle, at + 1, StringComparison.Ordinal))
            {
                if (Enumerable.Range(at, needle.Length).Any(index => !segments[owner[index]].Trusted))
                {
                    gaps.Add(Enumerable.Range(at + 1, needle.Length - 1).First(gap => !segments[owner[gap - 1]].Trusted || !segments[owner[gap]].Trusted));
                }
            }
        }

        return gaps;
    }

    /// <summary>The rendered prompt, the segment each of its characters comes from, and where each segment starts.</summary>
    private static (string Text, int[] Owner, int[] Offsets) Layout(IReadOnlyList<(string Text, bool Trusted)> segments)
    {
        var text = string.Concat(segments.Select(segment => segment.Text));
        var owner = new int[text.Length];
        var offsets = new int[segments.Count];
        for (int index = 0, at = 0; index < segments.Count; at += segments[index].Text.Length, index++)
        {
            offsets[index] = at;
            owner.AsSpan(at, segments[index].Text.Length).Fill(index);
        }

        return (text, owner, offsets);
    }

    /// <summary>The rendered prompt as the template's own text (trusted) and the messages' contents (not), in order.</summary>
    private List<(string Text, bool Trusted)> Segments(IEnumerable<PromptMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var segments = new List<(string Text, bool Trusted)> { (Begin, true) };
        foreach (var message in messages)
        {
            var format = _roles.TryGetValue(message.Role, out var known)
                ? known
                : throw new ArgumentException($"The role '{message.Role}' is not one of {string.Join(", ", Roles)}.", nameof(messages));
            segments.Add((format.Prefix, true));
            segments.Add((message.Content, false));
            segments.Add((format.Suffix, true));
        }

        segments.Add((GenerationPrefix, true));
        return segments;
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
