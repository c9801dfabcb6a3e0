using Bastion.Generation;

namespace Bastion.Anomaly;

/// <summary>
/// Watches one user's traffic for the signals of <see cref="AnomalySignal"/>. Pure apart from the fingerprints of
/// recent prompts, which it keeps in memory only (one instance per user grain activation): hashes of low-entropy
/// prompts could be reversed by guessing, so they are never persisted. Everything else lives in the
/// <see cref="AnomalyState"/> passed in, which the grain persists with the user. Each signal fires once its count
/// reaches the threshold and then starts counting afresh, so a sustained attack fires once per threshold's worth.
/// </summary>
public sealed class AnomalyDetector(AnomalyOptions options)
{
    /// <summary>How many recent prompt fingerprints are kept (about 40 bytes each).</summary>
    public const int PromptMemory = 512;

    private readonly List<RecentPrompt> _prompts = [];

    /// <summary>
    /// The text of a request the prompt signals look at: a completion's prompt, or a chat's last message only. A chat
    /// resends its system prompt and history on every turn, so the whole of two consecutive turns is near-identical by
    /// construction; what the user varies (a fuzzed jailbreak, an enumerated value) is in the newest message.
    /// </summary>
    public static string PromptText(GenerationRequest request) =>
        request.Messages is { Length: > 0 } messages ? messages[^1].Content : request.Prompt;

    /// <summary>Counts a wrong secret presented for one of the user's live keys.</summary>
    public AnomalyHit? AuthenticationFailed(AnomalyState state, DateTimeOffset now) =>
        Count(state.AuthenticationFailures, options.AuthenticationFailures, AnomalySignal.AuthenticationFailures, now);

    /// <summary>Counts a request refused by a limit or a missing permission.</summary>
    public AnomalyHit? Refused(AnomalyState state, DateTimeOffset now) =>
        Count(state.Refusals, options.RefusalStorm, AnomalySignal.RefusalStorm, now);

    /// <summary>
    /// Looks at an admitted prompt and the (keyed hash of the) client network it came from, if known: near-identical
    /// prompts, enumeration and a new network.
    /// </summary>
    public IReadOnlyList<AnomalyHit> Admitted(AnomalyState state, string prompt, string? network, DateTimeOffset now)
    {
        var hits = new List<AnomalyHit>(1);
        var fingerprint = PromptFingerprint.Of(prompt);
        var near = options.NearIdenticalPrompts;
        var enumeration = options.PromptEnumeration;
        var oldest = now - (near.Window > enumeration.Window ? near.Window : enumeration.Window);
        _prompts.RemoveAll(p => p.At <= oldest);
        var current = new RecentPrompt(now, fingerprint)
        {
            CountsNear = fingerprint.Length >= near.MinimumLength,
            CountsEnumeration = fingerprint.StemLength >= enumeration.MinimumStemLength,
        };

        if (current.CountsNear)
        {
            // Enumeration siblings (same stem, other values) are near each other too; they are that signal's to count.
            var matches = _prompts.Where(p => p.CountsNear && p.At > now - near.Window
                && PromptFingerprint.Distance(p.Fingerprint.SimHash, fingerprint.SimHash) <= near.MaxDistance
                && !(current.CountsEnumeration && IsSibling(p.Fingerprint, fingerprint))).ToList();
            if (matches.Count + 1 >= near.Threshold)
            {
                hits.Add(new(AnomalySignal.NearIdenticalPrompts, matches.Count + 1, near.Threshold));
                matches.ForEach(p => p.CountsNear = false);
                current.CountsNear = false;
            }
        }

        if (current.CountsEnumeration)
        {
            var siblings = _prompts.Where(p => p.CountsEnumeration && p.At > now - enumeration.Window && p.Fingerprint.Stem == fingerprint.Stem).ToList();
            var distinct = siblings.Select(p => p.Fingerprint.Exact).Append(fingerprint.Exact).Distinct().Count();
            if (distinct >= enumeration.Threshold)
            {
                hits.Add(new(AnomalySignal.PromptEnumeration, distinct, enumeration.Threshold));
                siblings.ForEach(p => p.CountsEnumeration = false);
                current.CountsEnumeration = false;
            }
        }

        _prompts.Add(current);
        if (_prompts.Count > PromptMemory)
        {
            _prompts.RemoveAt(0);
        }

        if (network is not null && SeeNetwork(state, network, now) is { } newNetwork)
        {
            hits.Add(newNetwork);
        }

        return hits;
    }

    /// <summary>Adds a settled generation's tokens to the current hour and compares the hour with the user's baseline.</summary>
    public AnomalyHit? Settled(AnomalyState state, long tokens, DateTimeOffset now)
    {
        var spike = options.TokenVolumeSpike;
        var hour = new DateTimeOffset(now.UtcDateTime.Year, now.UtcDateTime.Month, now.UtcDateTime.Day, now.UtcDateTime.Hour, 0, 0, TimeSpan.Zero);
        if (state.HourStart != hour)
        {
            // Idle hours do not count: the baseline is what the user uses in an hour when they use the service at all,
            // so someone who works one hour a day is not flagged for it.
            if (state.HourTokens > 0)
            {
                state.BaselineTokensPerHour = state.ActiveHours == 0
                    ? state.HourTokens
                    : (spike.Smoothing * state.HourTokens) + ((1 - spike.Smoothing) * state.BaselineTokensPerHour);
                state.ActiveHours++;
            }

            state.HourStart = hour;
            state.HourTokens = 0;
            state.HourFlagged = false;
        }

        state.HourTokens += Math.Max(0, tokens);
        if (state.HourFlagged || state.ActiveHours < spike.WarmUpHours || state.HourTokens < spike.MinimumTokens
            || state.HourTokens <= spike.Factor * state.BaselineTokensPerHour)
        {
            return null;
        }

        state.HourFlagged = true;
        return new(AnomalySignal.TokenVolumeSpike, Math.Round(state.HourTokens / state.BaselineTokensPerHour, 1), spike.Factor);
    }

    private AnomalyHit? SeeNetwork(AnomalyState state, string network, DateTimeOffset now)
    {
        var settings = options.NewClientNetwork;
        var established = state.NetworksSince is { } since && now - since >= settings.EstablishedAfter && state.NetworkRequests >= settings.MinimumRequests;
        state.NetworkRequests++;
        state.NetworksSince ??= now;
        if (state.Networks.Find(n => n.Hash == network) is { } known)
        {
            known.LastSeen = now;
            return null;
        }

        state.Networks.Add(new KnownNetwork { Hash = network, LastSeen = now });
        if (state.Networks.Count > settings.Remembered)
        {
            state.Networks.Remove(state.Networks.MinBy(n => n.LastSeen)!);
        }

        return established ? new(AnomalySignal.NewClientNetwork, 1, 1) : null;
    }

    private static bool IsSibling(PromptFingerprint a, PromptFingerprint b) => a.Stem == b.Stem && a.Exact != b.Exact;

    private static AnomalyHit? Count(List<DateTimeOffset> events, WindowedSignalOptions settings, AnomalySignal signal, DateTimeOffset now)
    {
        events.RemoveAll(at => at <= now - settings.Window);
        events.Add(now);
        if (events.Count < settings.Threshold)
        {
            return null;
        }

        events.Clear();
        return new(signal, settings.Threshold, settings.Threshold);
    }

    private sealed class RecentPrompt(DateTimeOffset at, PromptFingerprint fingerprint)
    {
        public DateTimeOffset At { get; } = at;

        public PromptFingerprint Fingerprint { get; } = fingerprint;

        public bool CountsNear { get; set; }

        public bool CountsEnumeration { get; set; }
    }
}
