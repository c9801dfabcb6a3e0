namespace Bastion.Limits;

/// <summary>How a <see cref="LimitPolicy"/> counts. Every algorithm means "never more than the limit".</summary>
public enum LimitAlgorithm
{
    /// <summary>Capacity N, refilled continuously at N per window; a burst of N is allowed when full.</summary>
    TokenBucket = 0,

    /// <summary>A meter that drains continuously at N per window; a request fits while the level stays at or under N.</summary>
    LeakyBucket = 1,

    /// <summary>At most N per window; windows are aligned to the Unix epoch (UTC).</summary>
    FixedWindow = 2,

    /// <summary>At most N within any interval of one window's length (an exact sliding log).</summary>
    SlidingWindow = 3,
}
