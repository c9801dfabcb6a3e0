namespace Bastion.Limits;

/// <summary>The answer to one request against a calendar quota.</summary>
/// <param name="Granted">True when the cost was (or, for a peek, would be) consumed.</param>
/// <param name="Remaining">Units left in the current period after this decision (never negative).</param>
/// <param name="RetryAfter">
/// Zero when granted; otherwise the time until the next period starts; <see cref="TimeSpan.MaxValue"/> when
/// <see cref="NeverFits"/>.
/// </param>
/// <param name="ResetAfter">Time until the next period starts.</param>
/// <param name="NeverFits">The cost exceeds the whole quota, so no period will ever grant it.</param>
[GenerateSerializer, Immutable, Alias("bastion.quota-decision")]
public sealed record QuotaDecision(
    [property: Id(0)] bool Granted,
    [property: Id(1)] long Remaining,
    [property: Id(2)] TimeSpan RetryAfter,
    [property: Id(3)] TimeSpan ResetAfter,
    [property: Id(4)] bool NeverFits);
