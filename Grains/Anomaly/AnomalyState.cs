namespace Bastion.Anomaly;

/// <summary>
/// The persisted part of one user's anomaly state: timestamps of recent failures and refusals, the hourly token
/// baseline, keyed hashes of the client networks seen, and a running throttle. It never holds a prompt, an address or a
/// secret; prompt fingerprints stay in the activation's memory (<see cref="AnomalyDetector"/>).
/// </summary>
[GenerateSerializer, Alias("bastion.anomaly-state")]
public sealed class AnomalyState
{
    /// <summary>When a wrong secret was presented for a live key, newest last (at most the signal's threshold).</summary>
    [Id(0)] public List<DateTimeOffset> AuthenticationFailures { get; set; } = [];

    /// <summary>When a request was refused, newest last (at most the signal's threshold).</summary>
    [Id(1)] public List<DateTimeOffset> Refusals { get; set; } = [];

    /// <summary>The start of the hour <see cref="HourTokens"/> counts.</summary>
    [Id(2)] public DateTimeOffset HourStart { get; set; }

    /// <summary>Tokens settled in the current hour.</summary>
    [Id(3)] public long HourTokens { get; set; }

    /// <summary>The moving average of tokens per active hour.</summary>
    [Id(4)] public double BaselineTokensPerHour { get; set; }

    /// <summary>Finished hours with any usage that went into the baseline.</summary>
    [Id(5)] public int ActiveHours { get; set; }

    /// <summary>True once the current hour has fired a spike (an hour fires at most once).</summary>
    [Id(6)] public bool HourFlagged { get; set; }

    /// <summary>Keyed hashes of the client networks seen, with when each was last seen.</summary>
    [Id(7)] public List<KnownNetwork> Networks { get; set; } = [];

    /// <summary>When the first network was seen.</summary>
    [Id(8)] public DateTimeOffset? NetworksSince { get; set; }

    /// <summary>Admitted requests that named a network.</summary>
    [Id(9)] public long NetworkRequests { get; set; }

    /// <summary>Until when the user's limits are lowered, if they are.</summary>
    [Id(10)] public DateTimeOffset? ThrottledUntil { get; set; }

    /// <summary>The factor the running throttle multiplies the limits by.</summary>
    [Id(11)] public double ThrottleFactor { get; set; } = 1;
}

/// <summary>A client network one user has used: a keyed hash of the network (no address), and when it was last seen.</summary>
[GenerateSerializer, Alias("bastion.known-network")]
public sealed class KnownNetwork
{
    [Id(0)] public string Hash { get; set; } = "";
    [Id(1)] public DateTimeOffset LastSeen { get; set; }
}
