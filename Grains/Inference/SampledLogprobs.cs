using System.Numerics.Tensors;

namespace Bastion.Inference;

/// <summary>A sampled token's log probability and the most likely tokens at its step.</summary>
/// <param name="Logprob">The chosen token's log probability.</param>
/// <param name="Top">The most likely tokens, most likely first, with their log probabilities.</param>
public sealed record SampledLogprobs(float Logprob, (int Token, float Logprob)[] Top)
{
    /// <summary>Log-softmax of <paramref name="logits"/> at <paramref name="token"/>, and the <paramref name="top"/> highest.</summary>
    public static SampledLogprobs Of(ReadOnlySpan<float> logits, int token, int top)
    {
        // log p_i = x_i − (max + log Σ exp(x_j − max)), in double so that a 50k-entry sum loses nothing that matters.
        var max = TensorPrimitives.Max(logits);
        var sum = 0.0;
        foreach (var logit in logits)
        {
            sum += Math.Exp(logit - max);
        }

        var logNormalizer = max + Math.Log(sum);
        var best = new (int Token, float Logprob)[Math.Min(top, logits.Length)];
        var filled = 0;
        for (var i = 0; i < logits.Length && best.Length > 0; i++)
        {
            // Insertion into a short sorted array: top is at most 20, so this stays one pass over the vocabulary.
            if (filled == best.Length && logits[i] <= best[filled - 1].Logprob)
            {
                continue;
            }

            var at = filled == best.Length ? filled - 1 : filled++;
            while (at > 0 && best[at - 1].Logprob < logits[i])
            {
                best[at] = best[at - 1];
                at--;
            }

            best[at] = (i, logits[i]);
        }

        for (var i = 0; i < best.Length; i++)
        {
            best[i].Logprob = (float)(best[i].Logprob - logNormalizer);
        }

        return new SampledLogprobs((float)(logits[token] - logNormalizer), best);
    }
}
