namespace Bastion.Generation;

/// <summary>A finished completion. Holds generated text, so it redacts itself when printed.</summary>
/// <param name="Text">The generated text.</param>
/// <param name="Usage">Exact prompt and completion token counts.</param>
/// <param name="FinishReason"><c>stop</c>, <c>length</c> or <c>content_filter</c>, as OpenAI reports it; or <c>cancelled</c>.</param>
/// <param name="Logprobs">Each token's log probability, when the request asked for them; their texts concatenate to <paramref name="Text"/>.</param>
/// <param name="Choices">
/// With more than one choice (OpenAI's <c>n</c>): each choice's own result, in order. Then <paramref name="Text"/>,
/// <paramref name="FinishReason"/> and <paramref name="Logprobs"/> are the first choice's, and <paramref name="Usage"/>
/// counts the prompt once and the completion tokens of every choice.
/// </param>
/// <param name="OutputGuardHits">
/// What the output guard redacted or blocked, per rule (over every choice); null when it found nothing (or is off).
/// </param>
[GenerateSerializer, Immutable, Alias("bastion.generation-result")]
public sealed record GenerationResult(
    [property: Id(0)] string Text,
    [property: Id(1)] TokenUsage Usage,
    [property: Id(2)] string FinishReason,
    [property: Id(3)] TokenLogprob[]? Logprobs = null,
    [property: Id(4)] GenerationResult[]? Choices = null,
    [property: Id(5)] GuardHit[]? OutputGuardHits = null)
{
    /// <summary>Every choice: <see cref="Choices"/>, or this result alone.</summary>
    public IReadOnlyList<GenerationResult> AllChoices => Choices ?? [this];

    /// <summary>
    /// One result for several choices of one prompt: the prompt counted once, the completion tokens summed. Cancelled
    /// when any choice was, since the caller's credential then no longer holds.
    /// </summary>
    public static GenerationResult Combine(IReadOnlyList<GenerationResult> choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (choices.Count == 1)
        {
            return choices[0];
        }

        var first = choices[0];
        var usage = new TokenUsage(first.Usage.PromptTokens, choices.Sum(c => c.Usage.CompletionTokens));
        var finishReason = choices.Any(c => c.FinishReason == FinishReasons.Cancelled) ? FinishReasons.Cancelled : first.FinishReason;
        GuardHit[] hits = [.. choices.SelectMany(c => c.OutputGuardHits ?? []).GroupBy(hit => hit.Rule, StringComparer.Ordinal)
            .Select(rule => new GuardHit(rule.Key, rule.Sum(hit => hit.Count)))];
        return new GenerationResult(first.Text, usage, finishReason, first.Logprobs, [.. choices], hits.Length > 0 ? hits : null);
    }

    /// <summary>Completions never reach a log line.</summary>
    public override string ToString() => $"GenerationResult {{ Usage = {Usage}, FinishReason = {FinishReason}, Choices = {Choices?.Length ?? 1}, Text = [redacted] }}";
}

/// <summary>Token counts of one generation, or of a user's total.</summary>
/// <param name="PromptTokens">Tokens in the prompt.</param>
/// <param name="CompletionTokens">Tokens generated.</param>
[GenerateSerializer, Immutable, Alias("bastion.token-usage")]
public sealed record TokenUsage(
    [property: Id(0)] long PromptTokens,
    [property: Id(1)] long CompletionTokens)
{
    /// <summary>Prompt plus completion tokens.</summary>
    public long TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>Why a generation ended.</summary>
public static class FinishReasons
{
    /// <summary>The model produced end-of-text.</summary>
    public const string Stop = "stop";

    /// <summary><c>max_tokens</c> was reached.</summary>
    public const string Length = "length";

    /// <summary>The generation was cancelled (the user was suspended or their tokens revoked).</summary>
    public const string Cancelled = "cancelled";

    /// <summary>The output guard found sensitive data and ended the completion before it (OpenAI's value).</summary>
    public const string ContentFilter = "content_filter";
}

/// <summary>How often one guard rule matched in a generation: a name and a count, never the matched text.</summary>
/// <param name="Rule">The rule's name, as in <c>bastion_guard_hits_total</c>: <c>email</c>, <c>payment-card</c>, …</param>
/// <param name="Count">How many times it matched.</param>
[GenerateSerializer, Immutable, Alias("bastion.guard-hit")]
public sealed record GuardHit(
    [property: Id(0)] string Rule,
    [property: Id(1)] int Count);
