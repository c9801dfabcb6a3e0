namespace Bastion.Guards;

/// <summary>How one generation's completion is guarded: the mode and the detectors in force.</summary>
/// <param name="Mode">Off, redact or block.</param>
/// <param name="Detectors">The detectors, in priority order (a subset of <see cref="OutputDetectors.All"/>).</param>
public sealed record OutputGuardPolicy(OutputGuardMode Mode, IReadOnlyList<OutputDetector> Detectors)
{
    /// <summary>No guard.</summary>
    public static OutputGuardPolicy Off { get; } = new(OutputGuardMode.Off, []);

    /// <summary>The default: every detector, redacting.</summary>
    public static OutputGuardPolicy Default { get; } = new(OutputGuardMode.Redact, OutputDetectors.All);

    /// <summary>True when the guard can change a completion.</summary>
    public bool IsActive => Mode != OutputGuardMode.Off && Detectors.Count > 0;

    public override string ToString() => $"OutputGuardPolicy {{ Mode = {Mode}, Detectors = {string.Join(", ", Detectors.Select(d => d.Rule))} }}";
}
