using Bastion.Generation;
using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

/// <summary>Presence and frequency penalties, and log probabilities, against values worked out by hand.</summary>
public sealed class TokenSamplerPenaltyTests
{
    private static readonly float[] Logits = [0.5f, 2.0f, 1.0f, -1.0f, 1.9f];

    [Fact]
    public void Next_GreedyWithoutPenalty_RepeatsTheArgmax() =>
        Assert.Equal([1, 1, 1, 1, 1, 1, 1], Greedy(new SamplingOptions(0, 1, 0, 0), 7));

    // frequency 0.3: token 1 falls 2.0 → 1.7 → 1.4 → 1.1, token 4 falls 1.9 → 1.6 → 1.3 → 1.0: they alternate.
    [Fact]
    public void Next_FrequencyPenalty_SubtractsPerOccurrence() =>
        Assert.Equal([1, 4, 1, 4, 1, 4, 1], Greedy(new SamplingOptions(0, 1, 0, 0, FrequencyPenalty: 0.3f), 7));

    // presence 0.5: token 1 falls once to 1.5 and stays; token 4 falls once to 1.4: after one each, 1 wins for good.
    [Fact]
    public void Next_PresencePenalty_SubtractsOnceWhateverTheCount() =>
        Assert.Equal([1, 4, 1, 1, 1, 1, 1], Greedy(new SamplingOptions(0, 1, 0, 0, PresencePenalty: 0.5f), 7));

    // A negative penalty raises what was chosen: after token 1 once, at frequency −1, its logit is 3.0, written here by hand.
    [Fact]
    public void Next_NegativeFrequencyPenalty_RaisesWhatWasChosen()
    {
        var sampler = new TokenSampler(new SamplingOptions(0, 1, 0, 0, FrequencyPenalty: -1f));
        sampler.Next(Logits);

        var token = sampler.Next(Logits, topLogprobs: 0, out var logprobs);

        float[] byHand = [0.5f, 3.0f, 1.0f, -1.0f, 1.9f];
        Assert.Equal(1, token);
        Assert.Equal(3.0 - Math.Log(byHand.Sum(x => Math.Exp(x))), logprobs!.Logprob, 5);
    }

    [Fact]
    public void Next_Logprobs_AreTheLogSoftmaxOfTheLogits_ComputedByHand()
    {
        // log-softmax of [1, 2, 3]: logsumexp = 3 + ln(1 + e^-1 + e^-2) = 3.4076059644.
        var sampler = new TokenSampler(new SamplingOptions(0, 1, 0, 0));

        var token = sampler.Next([1f, 2f, 3f], topLogprobs: 3, out var logprobs);

        Assert.Equal(2, token);
        Assert.NotNull(logprobs);
        Assert.Equal(-0.4076059644, logprobs.Logprob, 5);
        Assert.Equal([2, 1, 0], logprobs.Top.Select(t => t.Token));
        Assert.Equal(-0.4076059644, logprobs.Top[0].Logprob, 5);
        Assert.Equal(-1.4076059644, logprobs.Top[1].Logprob, 5);
        Assert.Equal(-2.4076059644, logprobs.Top[2].Logprob, 5);
        Assert.Equal(1.0, logprobs.Top.Sum(t => Math.Exp(t.Logprob)), 5);
    }

    [Fact]
    public void Next_Logprobs_AreAfterPenalties_AndBeforeTemperature()
    {
        var sampler = new TokenSampler(new SamplingOptions(0.5f, 1, 0, 9, PresencePenalty: 0.5f));
        var first = sampler.Next(Logits);

        var second = sampler.Next(Logits, topLogprobs: 2, out var logprobs);

        // By hand: the first token's logit loses 0.5; the temperature (0.5) does not enter the reported distribution.
        var penalized = Logits.ToArray();
        penalized[first] -= 0.5f;
        var logSum = Math.Log(penalized.Sum(x => Math.Exp(x)));
        Assert.NotNull(logprobs);
        Assert.Equal(penalized[second] - logSum, logprobs.Logprob, 5);
        Assert.Equal(2, logprobs.Top.Length);
        Assert.True(logprobs.Top[0].Logprob >= logprobs.Top[1].Logprob);
        Assert.Equal(penalized.Max() - logSum, logprobs.Top[0].Logprob, 5);
        Assert.InRange(logprobs.Top.Sum(t => Math.Exp(t.Logprob)), 0, 1 + 1e-6);
    }

    [Fact]
    public void Next_ZeroTopLogprobs_GivesTheTokensLogprobAndNoAlternatives()
    {
        var sampler = new TokenSampler(new SamplingOptions(0, 1, 0, 0));

        sampler.Next([0f, 0f], topLogprobs: 0, out var logprobs);

        Assert.NotNull(logprobs);
        Assert.Equal(Math.Log(0.5), logprobs.Logprob, 5);
        Assert.Empty(logprobs.Top);
    }

    private static int[] Greedy(SamplingOptions options, int count)
    {
        var sampler = new TokenSampler(options);
        return [.. Enumerable.Range(0, count).Select(_ => sampler.Next(Logits))];
    }
}
