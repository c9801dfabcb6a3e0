using System.Diagnostics;
using Bastion.Inference;
using Xunit.Abstractions;

namespace Bastion.Tests.Grains.Inference;

[Collection(TinyModelCollection.Name)]
public sealed class DecoderModelTests(TinyModelFixture fixture, ITestOutputHelper output)
{
    private static readonly int[] Prompt = [15496, 995, 11, 428, 318, 257, 1332]; // "Hello world, this is a test"

    [Fact]
    public void Load_TinyModel_ReadsShapeFromInputMetadata()
    {
        var model = fixture.Model;

        Assert.Equal(ModelShape.Tiny.Layers, model.Layers);
        Assert.Equal(ModelShape.Tiny.Heads, model.Heads);
        Assert.Equal(ModelShape.Tiny.HeadSize, model.HeadSize);
        Assert.Equal(ModelShape.Tiny.VocabSize, model.VocabSize);
        Assert.Equal(ModelShape.Tiny.ContextLength, model.ContextLength);
        Assert.True(model.HasPositionIds);
        Assert.Equal(ExecutionProviderKind.Cpu, model.ExecutionProvider);
    }

    [Fact]
    public void GenerateGreedy_WithKvCache_MatchesFullSequenceRunsWithoutCache()
    {
        const int Steps = 24;
        var cachedLogits = new List<float[]>();
        var stopwatch = Stopwatch.StartNew();
        var cached = fixture.Model.GenerateGreedy(Prompt, Steps, (_, logits) => cachedLogits.Add(logits.ToArray()), CancellationToken.None).ToList();
        output.WriteLine($"{Steps} cached steps in {stopwatch.Elapsed.TotalMilliseconds:F1} ms: {string.Join(' ', cached)}");

        var (uncached, uncachedLogits) = FullSequenceReference.Run(fixture.ModelBytes, Prompt, Steps);
        var lastLogits = uncachedLogits[^1];

        // Greedy equality is only meaningful when no step is a near-tie that rounding could flip.
        var smallestMargin = cachedLogits.Min(TopTwoMargin);
        output.WriteLine($"smallest top-1/top-2 logit margin: {smallestMargin}");
        Assert.True(smallestMargin > 1e-2f, $"greedy choice nearly tied: margin {smallestMargin}");
        Assert.Equal(Steps, cached.Count);
        Assert.Equal(uncached, cached);
        Assert.Equal(lastLogits.Length, cachedLogits[^1].Length);
        for (var i = 0; i < lastLogits.Length; i++)
        {
            Assert.True(Math.Abs(lastLogits[i] - cachedLogits[^1][i]) <= 1e-4f,
                $"logit {i}: cached {cachedLogits[^1][i]} vs full {lastLogits[i]}");
        }
    }

    [Fact]
    public void GenerateGreedy_MaxNewTokens_YieldsExactlyThatMany()
    {
        Assert.Equal(5, fixture.Model.GenerateGreedy(Prompt, 5, CancellationToken.None).Count());
        Assert.Empty(fixture.Model.GenerateGreedy(Prompt, 0, CancellationToken.None));
    }

    [Fact]
    public void GenerateGreedy_CancelledBetweenSteps_StopsGenerating()
    {
        using var cancellation = new CancellationTokenSource();
        var produced = new List<int>();

        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var token in fixture.Model.GenerateGreedy(Prompt, 50, cancellation.Token))
            {
                produced.Add(token);
                if (produced.Count == 3)
                {
                    cancellation.Cancel();
                }
            }
        });
        Assert.Equal(3, produced.Count);
    }

    [Fact]
    public void GenerateGreedy_AlreadyCancelled_RunsNoStep()
    {
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => fixture.Model.GenerateGreedy(Prompt, 5, cancellation.Token).ToList());
    }

    [Fact]
    public void GenerateGreedy_EmptyPrompt_IsRejected() =>
        Assert.Throws<ArgumentException>(() => fixture.Model.GenerateGreedy([], 5, CancellationToken.None));

    private static float TopTwoMargin(float[] logits)
    {
        var sorted = logits.OrderDescending().Take(2).ToArray();
        return sorted[0] - sorted[1];
    }
}
