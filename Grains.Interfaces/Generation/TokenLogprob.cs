namespace Bastion.Generation;

/// <summary>
/// One generated token's log probability, and the most likely alternatives at its step. Holds generated text, so it
/// redacts itself when printed.
/// </summary>
/// <param name="Token">
/// The text this token added to the completion: empty for a token that only starts a multi-byte character (the
/// character counts for the token that completes it), cut short for a token a stop sequence cuts through. The tokens'
/// texts concatenate to the completion's text.
/// </param>
/// <param name="Logprob">The natural log of the token's probability in the distribution it was drawn from.</param>
/// <param name="Top">The most likely tokens at that step, most likely first.</param>
[GenerateSerializer, Immutable, Alias("bastion.token-logprob")]
public sealed record TokenLogprob(
    [property: Id(0)] string Token,
    [property: Id(1)] float Logprob,
    [property: Id(2)] TopLogprob[] Top)
{
    /// <summary>Completions never reach a log line.</summary>
    public override string ToString() => $"TokenLogprob {{ Logprob = {Logprob}, Top = {Top.Length}, Token = [redacted] }}";
}

/// <summary>An alternative token at a step. Holds generated text, so it redacts itself when printed.</summary>
/// <param name="Token">The token's text on its own.</param>
/// <param name="Logprob">The natural log of its probability.</param>
[GenerateSerializer, Immutable, Alias("bastion.top-logprob")]
public sealed record TopLogprob(
    [property: Id(0)] string Token,
    [property: Id(1)] float Logprob)
{
    /// <summary>Completions never reach a log line.</summary>
    public override string ToString() => $"TopLogprob {{ Logprob = {Logprob}, Token = [redacted] }}";
}
