namespace Bastion.Anomaly;

/// <summary>A pattern in one user's traffic that the user grain watches for (docs/anomaly-detection.md).</summary>
public enum AnomalySignal
{
    /// <summary>Wrong secrets presented for one of the user's live API keys: someone is guessing it.</summary>
    AuthenticationFailures = 1,

    /// <summary>Many requests refused by a limit or a missing permission: a client that ignores <c>Retry-After</c>, or probes.</summary>
    RefusalStorm = 2,

    /// <summary>Many prompts within a small SimHash distance of each other: fuzzing one prompt, or a stuck retry loop.</summary>
    NearIdenticalPrompts = 3,

    /// <summary>Many distinct prompts that share a long stem and vary only in their last word or in numbers: enumeration.</summary>
    PromptEnumeration = 4,

    /// <summary>An hour's token volume far above the user's own baseline.</summary>
    TokenVolumeSpike = 5,

    /// <summary>A client network the user has not used before, once the user has an established set.</summary>
    NewClientNetwork = 6,
}

/// <summary>The names signals carry in configuration, audit details and metric labels.</summary>
public static class AnomalySignals
{
    /// <summary>Every signal.</summary>
    public static IReadOnlyList<AnomalySignal> All { get; } = Enum.GetValues<AnomalySignal>();

    /// <summary>The signal's stable name, e.g. <c>auth-failures</c>.</summary>
    public static string Name(this AnomalySignal signal) => signal switch
    {
        AnomalySignal.AuthenticationFailures => "auth-failures",
        AnomalySignal.RefusalStorm => "refusal-storm",
        AnomalySignal.NearIdenticalPrompts => "near-identical-prompts",
        AnomalySignal.PromptEnumeration => "prompt-enumeration",
        AnomalySignal.TokenVolumeSpike => "token-volume-spike",
        AnomalySignal.NewClientNetwork => "new-client-network",
        _ => throw new ArgumentOutOfRangeException(nameof(signal), signal, null),
    };
}
