namespace Bastion.Limits;

/// <summary>One entry of the sliding log: the units granted at one instant (grants at the same tick are merged).</summary>
/// <param name="AtUtcTicks">When the units were granted, in UTC ticks.</param>
/// <param name="Cost">The units granted then, less any refunds.</param>
[GenerateSerializer, Immutable, Alias("bastion.sliding-window-grant")]
public readonly record struct SlidingWindowGrant(
    [property: Id(0)] long AtUtcTicks,
    [property: Id(1)] long Cost);
