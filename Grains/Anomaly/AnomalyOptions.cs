using Bastion.Access;

namespace Bastion.Anomaly;

/// <summary>
/// Per-user anomaly detection (<c>Bastion:Anomaly</c>): each signal's threshold and window, what a throttle does, and
/// which action each role gets per signal. docs/anomaly-detection.md gives the reasoning behind every default.
/// </summary>
public sealed class AnomalyOptions
{
    public const string SectionName = "Bastion:Anomaly";

    // The same precedence as the limits: a user with several roles is judged by the most privileged one.
    private static readonly string[] Precedence = [Access.Roles.Admin, Access.Roles.Service, Access.Roles.DataScientist, Access.Roles.User];

    /// <summary>Wrong secrets for one live API key of the user, per window.</summary>
    public WindowedSignalOptions AuthenticationFailures { get; set; } = new() { Threshold = 50, Window = TimeSpan.FromHours(1) };

    /// <summary>Requests refused by a limit or a missing permission, per window.</summary>
    public WindowedSignalOptions RefusalStorm { get; set; } = new() { Threshold = 60, Window = TimeSpan.FromMinutes(10) };

    /// <summary>Admitted prompts within <see cref="NearIdenticalPromptOptions.MaxDistance"/> of each other, per window.</summary>
    public NearIdenticalPromptOptions NearIdenticalPrompts { get; set; } = new();

    /// <summary>Distinct admitted prompts sharing one stem, per window.</summary>
    public PromptEnumerationOptions PromptEnumeration { get; set; } = new();

    /// <summary>An hour's tokens against the user's own hourly baseline.</summary>
    public TokenVolumeSpikeOptions TokenVolumeSpike { get; set; } = new();

    /// <summary>When a client network counts as new.</summary>
    public NewClientNetworkOptions NewClientNetwork { get; set; } = new();

    /// <summary>What the <see cref="AnomalyAction.Throttle"/> action does.</summary>
    public ThrottleOptions Throttle { get; set; } = new();

    /// <summary>The action per signal for each role; a user with no known role gets the user role's.</summary>
    public Dictionary<string, RoleAnomalyOptions> Roles { get; set; } = new(StringComparer.Ordinal)
    {
        [Access.Roles.User] = RoleAnomalyOptions.Enforcing(),
        [Access.Roles.DataScientist] = RoleAnomalyOptions.Enforcing(),
        [Access.Roles.Service] = RoleAnomalyOptions.ObserveOnly(),
        [Access.Roles.Admin] = RoleAnomalyOptions.ObserveOnly(),
    };

    /// <summary>The action for <paramref name="signal"/> against a user holding <paramref name="roles"/>.</summary>
    public AnomalyAction ActionFor(IReadOnlyCollection<string> roles, AnomalySignal signal)
    {
        var role = Precedence.FirstOrDefault(roles.Contains) ?? Access.Roles.User;
        return Roles.TryGetValue(role, out var actions) ? actions.For(signal) : AnomalyAction.Observe;
    }

    /// <summary>Every problem with the configured options, each naming its setting.</summary>
    public IEnumerable<string> Problems()
    {
        var problems = new List<string>();
        AuthenticationFailures.Check($"{SectionName}:{nameof(AuthenticationFailures)}", problems);
        RefusalStorm.Check($"{SectionName}:{nameof(RefusalStorm)}", problems);
        NearIdenticalPrompts.Check($"{SectionName}:{nameof(NearIdenticalPrompts)}", problems);
        if (NearIdenticalPrompts.MaxDistance is < 0 or > 32)
        {
            problems.Add($"{SectionName}:{nameof(NearIdenticalPrompts)}:MaxDistance must be between 0 and 32 bits.");
        }

        PromptEnumeration.Check($"{SectionName}:{nameof(PromptEnumeration)}", problems);
        if (PromptEnumeration.Threshold > AnomalyDetector.PromptMemory || NearIdenticalPrompts.Threshold > AnomalyDetector.PromptMemory)
        {
            problems.Add($"{SectionName}: prompt thresholds must be at most {AnomalyDetector.PromptMemory} (the prompts remembered).");
        }

        var spike = TokenVolumeSpike;
        if (spike.Factor <= 1 || spike.MinimumTokens < 1 || spike.WarmUpHours < 1 || spike.Smoothing is <= 0 or > 1)
        {
            problems.Add($"{SectionName}:{nameof(TokenVolumeSpike)} needs a Factor above 1, MinimumTokens and WarmUpHours of at least 1, and Smoothing in (0, 1].");
        }

        var network = NewClientNetwork;
        if (network.EstablishedAfter < TimeSpan.Zero || network.MinimumRequests < 0 || network.Remembered is < 1 or > 64)
        {
            problems.Add($"{SectionName}:{nameof(NewClientNetwork)} needs a non-negative EstablishedAfter and MinimumRequests, and Remembered between 1 and 64.");
        }

        if (Throttle.Factor is <= 0 or >= 1 || Throttle.Duration <= TimeSpan.Zero)
        {
            problems.Add($"{SectionName}:{nameof(Throttle)} needs a Factor between 0 and 1 (exclusive) and a positive Duration.");
        }

        foreach (var (role, actions) in Roles)
        {
            if (!RolePermissions.IsKnown(role))
            {
                problems.Add($"{SectionName}:Roles:{role} is not a known role.");
            }

            foreach (var signal in AnomalySignals.All.Where(s => !Enum.IsDefined(actions.For(s))))
            {
                problems.Add($"{SectionName}:Roles:{role}:{signal} must be Observe, Throttle or Suspend.");
            }
        }

        return problems;
    }
}

/// <summary>A count of events in a sliding window.</summary>
public class WindowedSignalOptions
{
    /// <summary>The count in <see cref="Window"/> at which the signal fires.</summary>
    public int Threshold { get; set; }

    /// <summary>How far back events count.</summary>
    public TimeSpan Window { get; set; }

    internal void Check(string prefix, List<string> problems)
    {
        if (Threshold is < 2 or > 10_000 || Window <= TimeSpan.Zero || Window > TimeSpan.FromDays(1))
        {
            problems.Add($"{prefix} needs a Threshold between 2 and 10000 and a Window between 0 and 1 day.");
        }
    }
}

/// <summary>Near-identical prompts.</summary>
public sealed class NearIdenticalPromptOptions : WindowedSignalOptions
{
    public NearIdenticalPromptOptions()
    {
        Threshold = 30;
        Window = TimeSpan.FromMinutes(10);
    }

    /// <summary>Two prompts are near-identical when their 64-bit SimHashes differ in at most this many bits.</summary>
    public int MaxDistance { get; set; } = 8;

    /// <summary>Shorter prompts (health probes, "hi") are not compared: few shingles make SimHash noisy, and repeating them is harmless.</summary>
    public int MinimumLength { get; set; } = 32;
}

/// <summary>Prompt enumeration.</summary>
public sealed class PromptEnumerationOptions : WindowedSignalOptions
{
    public PromptEnumerationOptions()
    {
        Threshold = 25;
        Window = TimeSpan.FromMinutes(10);
    }

    /// <summary>Stems shorter than this are not compared ("Load 1", "Load 2" is not an attack).</summary>
    public int MinimumStemLength { get; set; } = 16;
}

/// <summary>Token-volume spikes.</summary>
public sealed class TokenVolumeSpikeOptions
{
    /// <summary>An hour fires when its tokens exceed the baseline times this.</summary>
    public double Factor { get; set; } = 10;

    /// <summary>An hour below this many tokens never fires, whatever the baseline.</summary>
    public long MinimumTokens { get; set; } = 50_000;

    /// <summary>Active hours (hours with any usage) of history needed before the signal can fire.</summary>
    public int WarmUpHours { get; set; } = 8;

    /// <summary>The weight of each finished active hour in the moving average (EWMA alpha).</summary>
    public double Smoothing { get; set; } = 0.2;
}

/// <summary>New client networks (IPv4 /24, IPv6 /48).</summary>
public sealed class NewClientNetworkOptions
{
    /// <summary>How long after the first network seen the set counts as established.</summary>
    public TimeSpan EstablishedAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Admitted requests needed before the set counts as established.</summary>
    public int MinimumRequests { get; set; } = 20;

    /// <summary>How many networks are remembered per user (least recently seen forgotten first).</summary>
    public int Remembered { get; set; } = 8;
}

/// <summary>The throttle action.</summary>
public sealed class ThrottleOptions
{
    /// <summary>The request, token and concurrency limits are multiplied by this (at least 1 remains).</summary>
    public double Factor { get; set; } = 0.1;

    /// <summary>How long a throttle lasts; a signal firing again while throttled extends it.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>One role's action per signal.</summary>
public sealed class RoleAnomalyOptions
{
    public AnomalyAction AuthenticationFailures { get; set; } = AnomalyAction.Observe;
    public AnomalyAction RefusalStorm { get; set; } = AnomalyAction.Observe;
    public AnomalyAction NearIdenticalPrompts { get; set; } = AnomalyAction.Observe;
    public AnomalyAction PromptEnumeration { get; set; } = AnomalyAction.Observe;
    public AnomalyAction TokenVolumeSpike { get; set; } = AnomalyAction.Observe;
    public AnomalyAction NewClientNetwork { get; set; } = AnomalyAction.Observe;

    /// <summary>The action for <paramref name="signal"/>.</summary>
    public AnomalyAction For(AnomalySignal signal) => signal switch
    {
        AnomalySignal.AuthenticationFailures => AuthenticationFailures,
        AnomalySignal.RefusalStorm => RefusalStorm,
        AnomalySignal.NearIdenticalPrompts => NearIdenticalPrompts,
        AnomalySignal.PromptEnumeration => PromptEnumeration,
        AnomalySignal.TokenVolumeSpike => TokenVolumeSpike,
        AnomalySignal.NewClientNetwork => NewClientNetwork,
        _ => AnomalyAction.Observe,
    };

    /// <summary>Ordinary users: throttle most signals, suspend on a burst of guessed secrets, only observe a new network.</summary>
    internal static RoleAnomalyOptions Enforcing() => new()
    {
        AuthenticationFailures = AnomalyAction.Suspend,
        RefusalStorm = AnomalyAction.Throttle,
        NearIdenticalPrompts = AnomalyAction.Throttle,
        PromptEnumeration = AnomalyAction.Throttle,
        TokenVolumeSpike = AnomalyAction.Throttle,
        NewClientNetwork = AnomalyAction.Observe,
    };

    /// <summary>Admins and services: their traffic is automated or operational, so a false positive costs too much to act on.</summary>
    internal static RoleAnomalyOptions ObserveOnly() => new();
}
