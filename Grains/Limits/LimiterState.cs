namespace Bastion.Limits;

/// <summary>
/// The persisted counters of one <see cref="LimitPolicy"/> for one user. A new instance is a full bucket, an empty
/// meter, an unused window and an empty log. Only the fields of the policy's algorithm are used; keep one state per
/// policy dimension, and start a fresh one if an admin changes the algorithm.
/// </summary>
/// <remarks>
/// Everything is integer ticks and integer units: a double-valued bucket can round N into N + 1 over a long run,
/// and persisted state must mean the same thing on every silo.
/// </remarks>
[GenerateSerializer, Alias("bastion.limiter-state")]
public sealed class LimiterState
{
    /// <summary>The latest instant the state was brought up to; an earlier clock reading is read as this one.</summary>
    [Id(0)] public long LastSeenUtcTicks { get; set; }

    /// <summary>
    /// Buckets: units in use (token bucket: spent tokens not yet refilled; leaky bucket: the meter level), whole part.
    /// </summary>
    [Id(1)] public long Level { get; set; }

    /// <summary>Buckets: the fractional part of <see cref="Level"/>, in 1/Window.Ticks units, in [0, Window.Ticks).</summary>
    [Id(2)] public long LevelFraction { get; set; }

    /// <summary>Fixed window: start of the window <see cref="Used"/> belongs to, in UTC ticks.</summary>
    [Id(3)] public long WindowStartUtcTicks { get; set; }

    /// <summary>Fixed window: end (exclusive) of the window <see cref="Used"/> belongs to, in UTC ticks.</summary>
    [Id(4)] public long WindowEndUtcTicks { get; set; }

    /// <summary>Fixed window: units granted in the current window. Sliding window: the sum of <see cref="Grants"/>.</summary>
    [Id(5)] public long Used { get; set; }

    /// <summary>Sliding window: grants still (or until the next request) inside the window, oldest first.</summary>
    [Id(6)] public List<SlidingWindowGrant> Grants { get; set; } = [];
}
