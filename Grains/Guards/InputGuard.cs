using Bastion.Diagnostics;
using Bastion.Generation;
using Microsoft.Extensions.Options;

namespace Bastion.Guards;

/// <summary>One input check that matched, and what the caller's policy does about it.</summary>
/// <param name="Check">The check: <c>prompt-cap</c> or a classifier's name (<c>injection</c>).</param>
/// <param name="Rules">What matched: the injection rules, or the cap for <c>prompt-cap</c>.</param>
/// <param name="Mode">Flag or block.</param>
public sealed record InputHit(string Check, IReadOnlyList<string> Rules, InputGuardMode Mode);

/// <summary>
/// The input guard (docs/guards.md): runs on the worker once the prompt is tokenized, before the request is queued or
/// admitted, so a refusal charges nothing. Checks the prompt's tokens against the caller's cap, and its text with every
/// <see cref="IInputClassifier"/>; each check runs in the mode the caller's policy gives it.
/// </summary>
public sealed class InputGuard(IOptions<InputGuardOptions> options, IEnumerable<IInputClassifier> classifiers, BastionMetrics? metrics = null)
{
    /// <summary>The checks a policy can name.</summary>
    public static IReadOnlySet<string> Checks { get; } = new HashSet<string>([InputGuardOptions.PromptCap, InputGuardOptions.Injection], StringComparer.Ordinal);

    private readonly IInputClassifier[] _classifiers = [.. classifiers];

    /// <summary>The checks that matched and are not off for a caller holding <paramref name="roles"/>; each is counted in metrics.</summary>
    public IReadOnlyList<InputHit> Check(IReadOnlyCollection<string> roles, GenerationRequest request, int promptTokens)
    {
        ArgumentNullException.ThrowIfNull(roles);
        ArgumentNullException.ThrowIfNull(request);
        var policy = options.Value.For(roles);
        var hits = new List<InputHit>();
        if (policy.ModeOf(InputGuardOptions.PromptCap) is not InputGuardMode.Off and var capMode && promptTokens > policy.PromptTokenCap)
        {
            hits.Add(new InputHit(InputGuardOptions.PromptCap, [InputGuardOptions.PromptCap], capMode));
        }

        string? text = null;
        foreach (var classifier in _classifiers)
        {
            if (policy.ModeOf(classifier.Name) is not InputGuardMode.Off and var mode
                && classifier.Classify(text ??= Text(request)) is { Count: > 0 } rules)
            {
                hits.Add(new InputHit(classifier.Name, rules, mode));
            }
        }

        foreach (var hit in hits)
        {
            foreach (var rule in hit.Rules)
            {
                metrics?.RecordGuardHit("input", rule, hit.Mode == InputGuardMode.Block ? "block" : "flag");
            }
        }

        return hits;
    }

    /// <summary>The cap that applies to a caller holding <paramref name="roles"/>.</summary>
    public int PromptTokenCap(IReadOnlyCollection<string> roles) => options.Value.For(roles).PromptTokenCap;

    /// <summary>Everything the caller wrote, each message on its own line: every role's content is the caller's.</summary>
    private static string Text(GenerationRequest request) =>
        request.Messages is { } messages ? string.Join('\n', messages.Select(message => message.Content)) : request.Prompt;
}
