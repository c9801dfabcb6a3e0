using System.Diagnostics;
using System.Security.Cryptography;
using Bastion.Inference;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace Bastion.Tests.Grains.Inference;

[Collection(TinyModelCollection.Name)]
public sealed class Gpt2ModelBuilderTests(TinyModelFixture fixture, ITestOutputHelper output)
{
    // Pinned so that a change in the bytes — across builds, machines or runtimes — fails here
    // before it breaks the digest that deployments pin in configuration.
    private const string TinyModelSha256 = "85aa5e9b8393745fd7d616a4786b984583a4624202d2c0b73584b240b24e660f";

    [Fact]
    public void Build_TinyModelTwice_IsByteIdenticalAndMatchesPinnedDigest()
    {
        var stopwatch = Stopwatch.StartNew();
        var again = Gpt2ModelBuilder.Build(ModelShape.Tiny);
        output.WriteLine($"built {again.Length} bytes in {stopwatch.ElapsedMilliseconds} ms");

        Assert.Equal(fixture.ModelBytes, again);
        output.WriteLine(Convert.ToHexStringLower(SHA256.HashData(again)));
        Assert.Equal(TinyModelSha256, Convert.ToHexStringLower(SHA256.HashData(again)));
    }

    [Fact]
    public void Build_TinyModel_HasOptimumDecoderInputsAndOutputs()
    {
        var session = fixture.Model.Session;
        var shape = ModelShape.Tiny;
        var expectedInputs = new List<string> { "input_ids", "attention_mask", "position_ids" };
        var expectedOutputs = new List<string> { "logits" };
        for (var layer = 0; layer < shape.Layers; layer++)
        {
            expectedInputs.AddRange([$"past_key_values.{layer}.key", $"past_key_values.{layer}.value"]);
            expectedOutputs.AddRange([$"present.{layer}.key", $"present.{layer}.value"]);
        }

        Assert.Equal(expectedInputs, session.InputNames);
        Assert.Equal(expectedOutputs, session.OutputNames);

        AssertTensor(session.InputMetadata["input_ids"], typeof(long), ["batch_size", "sequence_length"]);
        AssertTensor(session.InputMetadata["attention_mask"], typeof(long), ["batch_size", "past_sequence_length + sequence_length"]);
        AssertTensor(session.InputMetadata["position_ids"], typeof(long), ["batch_size", "sequence_length"]);
        AssertTensor(session.OutputMetadata["logits"], typeof(float), ["batch_size", "sequence_length", shape.VocabSize]);
        for (var layer = 0; layer < shape.Layers; layer++)
        {
            AssertTensor(session.InputMetadata[$"past_key_values.{layer}.key"], typeof(float), ["batch_size", shape.Heads, "past_sequence_length", shape.HeadSize]);
            AssertTensor(session.InputMetadata[$"past_key_values.{layer}.value"], typeof(float), ["batch_size", shape.Heads, "past_sequence_length", shape.HeadSize]);
            AssertTensor(session.OutputMetadata[$"present.{layer}.key"], typeof(float), ["batch_size", shape.Heads, "past_sequence_length + sequence_length", shape.HeadSize]);
            AssertTensor(session.OutputMetadata[$"present.{layer}.value"], typeof(float), ["batch_size", shape.Heads, "past_sequence_length + sequence_length", shape.HeadSize]);
        }
    }

    [Fact]
    public void WriteModelDirectory_WritesTheBuiltModelItsDefaultFilesAndNoTemporaryFile()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"bastion-model-{Guid.NewGuid():N}");
        try
        {
            var path = Gpt2ModelBuilder.WriteModelDirectory(directory, ModelShape.Tiny);

            Assert.Equal(Path.Combine(directory, "model.onnx"), path);
            Assert.Equal(fixture.ModelBytes, File.ReadAllBytes(path));
            Assert.Equal(["chat_template.json", "generation.json", "model.onnx"], Directory.GetFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Build_TinyModel_ComputesGpt2ForwardPass()
    {
        int[] tokens = [15496, 995, 11, 428, 318];
        var reference = new Gpt2ReferenceForward(fixture.ModelBytes, ModelShape.Tiny.Layers, ModelShape.Tiny.Heads).LastLogits(tokens);

        var actual = RunWithoutPast(fixture.Model.Session, [.. tokens.Select(t => (long)t)], [1, 1, 1, 1, 1], [0, 1, 2, 3, 4]);

        var worst = reference.Select((r, i) => Math.Abs(r - actual[i])).Max();
        output.WriteLine($"largest deviation from the reference: {worst}");
        Assert.True(worst < 1e-3, $"ONNX logits deviate from the GPT-2 reference by {worst}");
    }

    [Fact]
    public void Build_TinyModel_MasksLeftPaddingOut()
    {
        var session = fixture.Model.Session;
        var unpadded = RunWithoutPast(session, [15496, 995, 11], [1, 1, 1], [0, 1, 2]);

        // Two pad slots hold arbitrary tokens; the mask must hide them from every real query.
        var padded = RunWithoutPast(session, [464, 3290, 15496, 995, 11], [0, 0, 1, 1, 1], [0, 0, 0, 1, 2]);

        Assert.Equal(unpadded.Length, padded.Length);
        for (var i = 0; i < unpadded.Length; i++)
        {
            Assert.True(Math.Abs(unpadded[i] - padded[i]) <= 1e-4f, $"logit {i}: {unpadded[i]} vs padded {padded[i]}");
        }
    }

    [Fact]
    public void Build_DifferentSeed_GivesDifferentWeights() =>
        Assert.NotEqual(fixture.ModelBytes, Gpt2ModelBuilder.Build(ModelShape.Tiny, seed: 1));

    private static float[] RunWithoutPast(InferenceSession session, long[] tokens, long[] mask, long[] positions)
    {
        var shape = ModelShape.Tiny;
        var names = new List<string> { "input_ids", "attention_mask", "position_ids" };
        var values = new List<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(tokens, [1, tokens.Length]),
            OrtValue.CreateTensorValueFromMemory(mask, [1, mask.Length]),
            OrtValue.CreateTensorValueFromMemory(positions, [1, positions.Length]),
        };
        for (var layer = 0; layer < shape.Layers; layer++)
        {
            names.AddRange([$"past_key_values.{layer}.key", $"past_key_values.{layer}.value"]);
            values.Add(OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, shape.Heads, 0, shape.HeadSize]));
            values.Add(OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, shape.Heads, 0, shape.HeadSize]));
        }

        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, names, values, ["logits"]);
            return results[0].GetTensorDataAsSpan<float>()[^shape.VocabSize..].ToArray();
        }
        finally
        {
            values.ForEach(v => v.Dispose());
        }
    }

    /// <summary>Each expected dimension is a fixed size (int) or a symbolic name (string).</summary>
    private static void AssertTensor(NodeMetadata metadata, Type elementType, object[] expected)
    {
        Assert.True(metadata.IsTensor);
        Assert.Equal(elementType, metadata.ElementType);
        Assert.Equal(expected.Length, metadata.Dimensions.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            if (expected[i] is string symbol)
            {
                Assert.Equal(symbol, metadata.SymbolicDimensions[i]);
            }
            else
            {
                Assert.Equal((int)expected[i], metadata.Dimensions[i]);
            }
        }
    }
}
