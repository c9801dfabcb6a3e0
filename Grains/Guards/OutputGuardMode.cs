namespace Bastion.Guards;

/// <summary>What the output guard does when a detector matches.</summary>
public enum OutputGuardMode
{
    /// <summary>Nothing: the completion passes unchanged.</summary>
    Off,

    /// <summary>Each match is replaced by <c>[REDACTED:rule]</c>; the completion goes on.</summary>
    Redact,

    /// <summary>The completion ends before the first match, with finish reason <c>content_filter</c>.</summary>
    Block,
}
