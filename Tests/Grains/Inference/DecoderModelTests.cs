using System.Diagnostics;
using Bastion.Inference;
using Microsoft.ML.OnnxRuntime;
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

        var (uncached, lastLogits) = GenerateWithoutCache(Prompt, Steps);

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

    /// <summary>The reference: the whole sequence every step, zero-length past, argmax of the last position.</summary>
    private (List<int> Tokens, float[] LastLogits) GenerateWithoutCache(int[] prompt, int steps)
    {
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1 };
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        using var session = new InferenceSession(fixture.ModelBytes, sessionOptions);
        var shape = ModelShape.Tiny;
        var sequence = prompt.Select(t => (long)t).ToList();
        var generated = new List<int>();
        var lastLogits = Array.Empty<float>();

        for (var step = 0; step < steps; step++)
        {
            var length = sequence.Count;
            var names = new List<string> { DecoderIo.InputIds, DecoderIo.AttentionMask, DecoderIo.PositionIds };
            var values = new List<OrtValue>
            {
                OrtValue.CreateTensorValueFromMemory(sequence.ToArray(), [1, length]),
                OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, length).ToArray(), [1, length]),
                OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, length).Select(p => (long)p).ToArray(), [1, length]),
            };
            for (var layer = 0; layer < shape.Layers; layer++)
            {
                names.Add(DecoderIo.PastKey(layer));
                values.Add(OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, shape.Heads, 0, shape.HeadSize]));
                names.Add(DecoderIo.PastValue(layer));
                values.Add(OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, shape.Heads, 0, shape.HeadSize]));
            }

            try
            {
                using var runOptions = new RunOptions();
                using var results = session.Run(runOptions, names, values, [DecoderIo.Logits]);
                var logits = results[0].GetTensorDataAsSpan<float>();
                lastLogits = logits.Slice((length - 1) * shape.VocabSize, shape.VocabSize).ToArray();
            }
            finally
            {
                values.ForEach(v => v.Dispose());
            }

            var best = 0;
            for (var i = 1; i < lastLogits.Length; i++)
            {
                if (lastLogits[i] > lastLogits[best])
                {
                    best = i;
                }
            }

            generated.Add(best);
            sequence.Add(best);
        }

        return (generated, lastLogits);
    }
}
