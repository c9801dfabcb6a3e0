namespace Bastion.Limits;

/// <summary>One limit: never more than <paramref name="Limit"/> cost units per <paramref name="Window"/>.</summary>
/// <param name="Algorithm">How the units are counted.</param>
/// <param name="Limit">N, at least 1; also the largest cost that can ever be granted at once.</param>
/// <param name="Window">The period N refers to; positive and at most <see cref="MaxWindow"/>.</param>
[GenerateSerializer, Immutable, Alias("bastion.limit-policy")]
public sealed record LimitPolicy(
    [property: Id(0)] LimitAlgorithm Algorithm,
    [property: Id(1)] long Limit,
    [property: Id(2)] TimeSpan Window)
{
    /// <summary>The longest window accepted; it keeps every tick sum far from overflowing.</summary>
    public static readonly TimeSpan MaxWindow = TimeSpan.FromDays(3660);

    /// <summary>Throws when the policy cannot be enforced; policies arrive from configuration and admins.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Algorithm))
        {
            throw new ArgumentOutOfRangeException(nameof(Algorithm), Algorithm, "Unknown limit algorithm.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(Limit, 1, nameof(Limit));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(Window, TimeSpan.Zero, nameof(Window));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Window, MaxWindow, nameof(Window));
    }
}
