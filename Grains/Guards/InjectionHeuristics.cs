using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Bastion.Guards;

/// <summary>
/// Prompt-injection heuristics (docs/guards.md): a scored list of patterns for the phrasings and tricks injection
/// attempts share: orders to drop earlier instructions, requests for the system prompt, persona switches, chat-template
/// markers, invisible characters. A prompt is matched after normalization (full-width letters folded, format
/// characters such as zero width spaces removed, white space collapsed), so spacing and full-width letters do not hide a
/// phrase. The rules it matched add their scores; at the threshold it is a hit. Patterns run on .NET's non-backtracking
/// engine, so no prompt can make matching slow.
/// </summary>
public sealed class InjectionHeuristics : IInputClassifier
{
    public const string CheckName = "injection";

    private static readonly TimeSpan NoTimeout = Regex.InfiniteMatchTimeout;

    private readonly IReadOnlyList<(string Name, Regex Pattern, double Score)> _rules;
    private readonly double _threshold;

    /// <summary>The built-in rules: name, pattern, score (a threshold of 1 blocks on one strong rule or two weaker ones).</summary>
    public static IReadOnlyList<InjectionRule> BuiltIn { get; } =
    [
        Rule("ignore-instructions", 1.0,
            @"\b(ignore|disregard|forget|override|bypass|skip)\b.{0,40}\b(previous|prior|above|earlier|preceding|original|system|all|any|your)\b.{0,30}\b(instructions?|rules|prompts?|directives|guidelines|guardrails|constraints)\b"),
        Rule("reveal-system-prompt", 0.8,
            @"\b(reveal|show|print|repeat|output|display|leak|dump|tell me|what (is|are|were))\b.{0,30}\b(system prompt|system message|initial instructions|hidden instructions|your instructions|the (text|instructions|prompt) above)"),
        Rule("persona-override", 0.5,
            @"\byou are now\b|\bfrom now on,? you\b|\bact as an? (unrestricted|unfiltered|uncensored|jailbroken)|\bpretend (that )?you (have|are under) no (rules|restrictions|limits|guidelines)|\bno longer bound by\b"),
        Rule("jailbreak-persona", 0.8,
            @"\b(do anything now|developer mode|jailbreak(ed)?|god mode|dan mode)\b"),
        Rule("template-marker", 0.6,
            @"<\|(system|user|assistant|im_start|im_end|endoftext|begin_of_text|start_header_id|end_header_id|eot_id)\|>|\[/?inst\]|<</?sys>>|(^|\n)\s*(###\s*)?(system|assistant)\s*:"),
        Rule("invisible-text", 1.0,
            // Unicode tag characters (U+E0000–U+E007F) carry text no reader sees; matched before normalization removes them.
            @"[\uDB40][\uDC00-\uDC7F]"),
        Rule("bidi-override", 0.5,
            @"[\u202A-\u202E\u2066-\u2069]"),
        Rule("encoded-payload", 0.3,
            @"[A-Za-z0-9+/]{256,}={0,2}"),
    ];

    /// <summary>Rules matched against the text as written, before normalization removes the characters they look for.</summary>
    private static readonly HashSet<string> RawTextRules = new(StringComparer.Ordinal) { "invisible-text", "bidi-override" };

    public InjectionHeuristics(IOptions<InputGuardOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var injection = options.Value.InjectionRules;
        _threshold = injection.Threshold;
        var replaced = injection.Rules.Select(rule => rule.Name).ToHashSet(StringComparer.Ordinal);
        _rules = [.. BuiltIn.Where(rule => !injection.Disabled.Contains(rule.Name) && !replaced.Contains(rule.Name))
            .Concat(injection.Rules)
            .Select(rule => (rule.Name, Compile(rule.Pattern) ?? throw new ArgumentException($"The injection rule '{rule.Name}' has an invalid pattern."), rule.Score))];
    }

    public string Name => CheckName;

    public IReadOnlyList<string> Classify(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var normalized = Normalize(text);
        var matched = _rules.Where(rule => rule.Pattern.IsMatch(RawTextRules.Contains(rule.Name) ? text : normalized)).ToList();
        return matched.Sum(rule => rule.Score) >= _threshold ? [.. matched.Select(rule => rule.Name)] : [];
    }

    /// <summary>The pattern compiled as the guard runs it, or null when the non-backtracking engine cannot run it.</summary>
    public static Regex? Compile(string pattern)
    {
        if (string.IsNullOrEmpty(pattern))
        {
            return null;
        }

        try
        {
            return new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline | RegexOptions.NonBacktracking, NoTimeout);
        }
        catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>
    /// Full-width forms folded to ASCII, format characters removed, white space runs as one space or newline. (The silo
    /// runs with invariant globalization, without ICU's Unicode normalization, so the fold is written out.)
    /// </summary>
    public static string Normalize(string text)
    {
        var normalized = new StringBuilder(text.Length);
        var space = false;
        var newline = false;
        foreach (var written in text)
        {
            var character = written is >= '\uFF01' and <= '\uFF5E' ? (char)(written - 0xFEE0) : written;
            if (CharUnicodeInfo.GetUnicodeCategory(character) is UnicodeCategory.Format)
            {
                continue;
            }

            if (char.IsWhiteSpace(character))
            {
                space = true;
                newline |= character == '\n';
                continue;
            }

            if (space)
            {
                normalized.Append(newline ? '\n' : ' ');
                space = newline = false;
            }

            normalized.Append(character);
        }

        return normalized.ToString();
    }

    private static InjectionRule Rule(string name, double score, string pattern) => new() { Name = name, Pattern = pattern, Score = score };
}
