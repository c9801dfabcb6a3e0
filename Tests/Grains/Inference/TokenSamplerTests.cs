using Bastion.Generation;
using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

public sealed class TokenSamplerTests
{
    private static readonly float[] Logits = [0.5f, 2.0f, 1.0f, -1.0f, 1.9f];

    [Fact]
    public void Next_TemperatureZero_IsArgmax() =>
        Assert.All(Draws(new SamplingOptions(0, 1, 0, 7), 50), token => Assert.Equal(1, token));

    [Fact]
    public void Next_TopKOne_IsArgmax() =>
        Assert.All(Draws(new SamplingOptions(1.5f, 1, 1, 7), 50), token => Assert.Equal(1, token));

    [Fact]
    public void Next_TinyTopP_IsArgmax() =>
        Assert.All(Draws(new SamplingOptions(1.5f, 1e-6f, 0, 7), 50), token => Assert.Equal(1, token));

    [Fact]
    public void Next_SameSeed_GivesTheSameSequence()
    {
        var options = new SamplingOptions(1, 0.95f, 0, 42);

        Assert.Equal(Draws(options, 200), Draws(options, 200));
        Assert.NotEqual(Draws(options, 200), Draws(options with { Seed = 43 }, 200));
    }

    [Fact]
    public void Next_TopKTwo_DrawsOnlyTheTwoMostLikely() =>
        Assert.All(Draws(new SamplingOptions(1, 1, 2, 3), 500), token => Assert.Contains(token, new[] { 1, 4 }));

    [Fact]
    public void Next_AtTemperatureOne_FollowsTheSoftmax()
    {
        const int draws = 20_000;
        var counts = new int[Logits.Length];
        foreach (var token in Draws(new SamplingOptions(1, 1, 0, 11), draws))
        {
            counts[token]++;
        }

        var total = Logits.Sum(l => Math.Exp(l));
        for (var i = 0; i < Logits.Length; i++)
        {
            var expected = Math.Exp(Logits[i]) / total;
            Assert.InRange(counts[i] / (double)draws, expected - 0.02, expected + 0.02);
        }
    }

    private static List<int> Draws(SamplingOptions options, int count)
    {
        var sampler = new TokenSampler(options);
        return [.. Enumerable.Range(0, count).Select(_ => sampler.Next(Logits))];
    }
}
