namespace Bastion.Guards;

/// <summary>
/// The output guard (<c>Bastion:Guards:Output</c>, docs/guards.md): redaction or blocking of personal data and secrets
/// in completions. By default every detector redacts: an operator has to opt out of protection, not into it.
/// </summary>
public sealed class OutputGuardOptions
{
    public const string SectionName = "Bastion:Guards:Output";

    /// <summary><c>Off</c>, <c>Redact</c> (the default) or <c>Block</c>.</summary>
    public OutputGuardMode Mode { get; set; } = OutputGuardMode.Redact;

    /// <summary>The rules in force, by name (<see cref="OutputDetectors"/>); unset means all of them.</summary>
    public string[]? Detectors { get; set; }

    /// <summary>Every problem with the configured options, each naming its setting.</summary>
    public IEnumerable<string> Problems()
    {
        if (!Enum.IsDefined(Mode))
        {
            yield return $"{SectionName}:{nameof(Mode)} must be Off, Redact or Block.";
        }

        var known = OutputDetectors.All.Select(d => d.Rule).ToHashSet(StringComparer.Ordinal);
        foreach (var rule in Detectors ?? [])
        {
            if (!known.Contains(rule))
            {
                yield return $"{SectionName}:{nameof(Detectors)} names an unknown detector '{rule}'; known: {string.Join(", ", known)}.";
            }
        }
    }

    /// <summary>The policy these options describe.</summary>
    public OutputGuardPolicy ToPolicy() =>
        new(Mode, Detectors is { } rules ? OutputDetectors.Named(rules) : OutputDetectors.All);
}
