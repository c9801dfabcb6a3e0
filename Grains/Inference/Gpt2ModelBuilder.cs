using System.Globalization;
using Google.Protobuf;
using Onnx;
using static Bastion.Inference.OnnxGraphWriter;
using DataType = Onnx.TensorProto.Types.DataType;

namespace Bastion.Inference;

/// <summary>
/// Builds a GPT-2-architecture decoder as an ONNX model in the Hugging Face Optimum
/// decoder-with-past layout, with weights from a fixed seed, so every build is byte-identical.
/// </summary>
/// <remarks>
/// No real checkpoint can be downloaded here, yet the service must run real inference from a
/// fresh checkout; the weights are random, the math is GPT-2's.
/// </remarks>
public static class Gpt2ModelBuilder
{
    public const ulong DefaultSeed = 0xB0A5_7100_6C6C_0001UL;

    public const string ModelFileName = "model.onnx";

    public const int OpsetVersion = 17;

    // Embeddings far wider than GPT-2's 0.02 so the tied lm_head yields well separated logits:
    // greedy decoding then has clear winners and no near-ties that could flip between runs.
    private const double TokenEmbeddingStd = 0.35;
    private const double PositionEmbeddingStd = 0.35;
    private const double LinearStd = 0.25;
    private const double BiasStd = 0.02;
    private const float LayerNormEpsilon = 1e-5f;

    /// <summary>Serialises the model; needs memory for the weights plus one copy of the output.</summary>
    public static byte[] Build(ModelShape shape, ulong seed = DefaultSeed) => CreateModel(shape, seed).ToByteArray();

    /// <summary>
    /// Writes <c>model.onnx</c> into <paramref name="directory"/> (created if missing) through a
    /// temporary file renamed into place, so a reader never sees a half-written model, then the default
    /// <c>generation.json</c> and <c>chat_template.json</c> beside it: a complete model directory.
    /// </summary>
    /// <returns>The full path of the model file.</returns>
    public static string WriteModelDirectory(string directory, ModelShape shape, ulong seed = DefaultSeed)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var model = CreateModel(shape, seed);
        var target = Path.Combine(directory, ModelFileName);
        var temporary = Path.Combine(directory, $".{ModelFileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                // Streamed rather than ToByteArray: the GPT-2-small model would otherwise sit in memory twice.
                model.WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, target, overwrite: true);
            Generation.ModelDirectory.WriteDefaultFiles(directory);
            return target;
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    internal static ModelProto CreateModel(ModelShape shape, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();

        var weights = new DeterministicWeights(seed);
        var graph = new OnnxGraphWriter(new GraphProto { Name = "bastion_gpt2" });
        var width = shape.Width;
        var heads = shape.Heads;
        var kvHeads = shape.KvHeads;
        var headSize = shape.HeadSize;
        var kvWidth = kvHeads * headSize;

        const string Batch = "batch_size";
        const string Sequence = "sequence_length";
        const string Past = "past_sequence_length";
        const string Total = "past_sequence_length + sequence_length";

        graph.Input(DecoderIo.InputIds, DataType.Int64, Batch, Sequence);
        graph.Input(DecoderIo.AttentionMask, DataType.Int64, Batch, Total);
        if (shape.PositionIdsInput)
        {
            graph.Input(DecoderIo.PositionIds, DataType.Int64, Batch, Sequence);
        }

        for (var layer = 0; layer < shape.Layers; layer++)
        {
            graph.Input(DecoderIo.PastKey(layer), DataType.Float, Batch, kvHeads, Past, headSize);
            graph.Input(DecoderIo.PastValue(layer), DataType.Float, Batch, kvHeads, Past, headSize);
        }

        graph.Output(DecoderIo.Logits, DataType.Float, Batch, Sequence, shape.VocabSize);
        for (var layer = 0; layer < shape.Layers; layer++)
        {
            graph.Output(DecoderIo.PresentKey(layer), DataType.Float, Batch, kvHeads, Total, headSize);
            graph.Output(DecoderIo.PresentValue(layer), DataType.Float, Batch, kvHeads, Total, headSize);
        }

        var tokenEmbedding = Weight("transformer.wte.weight", [shape.VocabSize, width], TokenEmbeddingStd);
        var positionEmbedding = Weight("transformer.wpe.weight", [shape.ContextLength, width], PositionEmbeddingStd);

        var allowed = AttentionAllowed();

        var hidden = graph.Node("Add",
        [
            graph.Node("Gather", [tokenEmbedding, DecoderIo.InputIds], IntAttribute("axis", 0)),
            graph.Node("Gather", [positionEmbedding, shape.PositionIdsInput ? DecoderIo.PositionIds : PositionsFromMask()], IntAttribute("axis", 0)),
        ]);

        var splitSizes = graph.Int64Vector(width, kvWidth, kvWidth);
        var toHeads = graph.Int64Vector(0, 0, heads, headSize);
        var toKvHeads = kvHeads == heads ? toHeads : graph.Int64Vector(0, 0, kvHeads, headSize);
        var fromHeads = graph.Int64Vector(0, 0, width);
        var scoreScale = graph.FloatScalar((float)(1.0 / Math.Sqrt(headSize)));
        var maskedScore = graph.FloatScalar(float.MinValue);
        var half = graph.FloatScalar(0.5f);
        var one = graph.FloatScalar(1f);
        var geluCubic = graph.FloatScalar(0.044715f);
        var geluScale = graph.FloatScalar((float)Math.Sqrt(2.0 / Math.PI));
        // Scaled like GPT-2's residual projections so the stream's variance does not grow with depth.
        var residualStd = LinearStd / Math.Sqrt(2.0 * shape.Layers);

        for (var layer = 0; layer < shape.Layers; layer++)
        {
            var prefix = $"transformer.h.{layer}";

            // Causal self-attention.
            var normed = LayerNorm($"{prefix}.ln_1", hidden);
            var qkv = Linear($"{prefix}.attn.c_attn", normed, width, width + 2 * kvWidth, LinearStd);
            var parts = graph.MultiOutputNode("Split", [qkv, splitSizes], 3, IntAttribute("axis", 2));
            var query = SplitHeads(parts[0], toHeads);
            var key = RepeatForGroups(graph.NamedNode(DecoderIo.PresentKey(layer), "Concat", [DecoderIo.PastKey(layer), SplitHeads(parts[1], toKvHeads)], IntAttribute("axis", 2)));
            var value = RepeatForGroups(graph.NamedNode(DecoderIo.PresentValue(layer), "Concat", [DecoderIo.PastValue(layer), SplitHeads(parts[2], toKvHeads)], IntAttribute("axis", 2)));

            var keyT = graph.Node("Transpose", [key], IntsAttribute("perm", 0, 1, 3, 2));
            var scores = graph.Node("Mul", [graph.Node("MatMul", [query, keyT]), scoreScale]);
            var masked = graph.Node("Where", [allowed, scores, maskedScore]);
            var probabilities = graph.Node("Softmax", [masked], IntAttribute("axis", -1));
            var context = graph.Node("MatMul", [probabilities, value]);
            var merged = graph.Node("Reshape", [graph.Node("Transpose", [context], IntsAttribute("perm", 0, 2, 1, 3)), fromHeads]);
            var attention = Linear($"{prefix}.attn.c_proj", merged, width, width, residualStd);
            hidden = graph.Node("Add", [hidden, attention]);

            // MLP with GELU (tanh approximation, as GPT-2 was trained with).
            var normed2 = LayerNorm($"{prefix}.ln_2", hidden);
            var up = Linear($"{prefix}.mlp.c_fc", normed2, width, 4 * width, LinearStd);
            var cube = graph.Node("Mul", [graph.Node("Mul", [up, up]), up]);
            var inner = graph.Node("Mul", [graph.Node("Add", [up, graph.Node("Mul", [cube, geluCubic])]), geluScale]);
            var gelu = graph.Node("Mul", [graph.Node("Mul", [up, half]), graph.Node("Add", [graph.Node("Tanh", [inner]), one])]);
            var down = Linear($"{prefix}.mlp.c_proj", gelu, 4 * width, width, residualStd);
            hidden = graph.Node("Add", [hidden, down]);
        }

        var final = LayerNorm("transformer.ln_f", hidden);
        // lm_head is tied to the token embedding, as in GPT-2; ORT folds the transpose at load.
        var lmHead = graph.Node("Transpose", [tokenEmbedding], IntsAttribute("perm", 1, 0));
        graph.NamedNode(DecoderIo.Logits, "MatMul", [final, lmHead]);

        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "Bastion.Gpt2ModelBuilder",
            ProducerVersion = "1",
            Graph = graph.Graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = OpsetVersion });
        AddMetadata(model, "architecture", "gpt2");
        AddMetadata(model, "vocab_size", shape.VocabSize);
        AddMetadata(model, "n_ctx", shape.ContextLength);
        AddMetadata(model, "n_embd", shape.Width);
        AddMetadata(model, "n_layer", shape.Layers);
        AddMetadata(model, "n_head", shape.Heads);
        if (kvHeads != heads)
        {
            AddMetadata(model, "n_kv_head", kvHeads);
        }

        AddMetadata(model, "seed", seed.ToString(CultureInfo.InvariantCulture));
        return model;

        string Weight(string name, long[] dims, double std)
        {
            var count = 1L;
            foreach (var dim in dims)
            {
                count *= dim;
            }

            return graph.FloatInitializer(name, dims, weights.NextTensorBytes(count, std));
        }

        string Constant(string name, long count, float value)
        {
            var bytes = new byte[count * sizeof(float)];
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan()).Fill(value);
            return graph.FloatInitializer(name, [count], bytes);
        }

        string LayerNorm(string name, string input) =>
            graph.Node("LayerNormalization",
                [input, Constant($"{name}.weight", width, 1f), Weight($"{name}.bias", [width], BiasStd)],
                IntAttribute("axis", -1), FloatAttribute("epsilon", LayerNormEpsilon));

        string Linear(string name, string input, int inputs, int outputs, double std) =>
            graph.Node("Add",
            [
                graph.Node("MatMul", [input, Weight($"{name}.weight", [inputs, outputs], std)]),
                Weight($"{name}.bias", [outputs], BiasStd),
            ]);

        string SplitHeads(string input, string targetShape) =>
            graph.Node("Transpose", [graph.Node("Reshape", [input, targetShape])], IntsAttribute("perm", 0, 2, 1, 3));

        // Grouped-query attention: each key/value head serves heads / kvHeads query heads, so the
        // cache stays small while attention runs per query head. GPT-2 (kvHeads == heads) has no op here.
        string RepeatForGroups(string keyOrValue)
        {
            if (kvHeads == heads)
            {
                return keyOrValue;
            }

            var grouped = graph.Node("Unsqueeze", [keyOrValue, graph.Int64Vector(2)]);
            var repeated = graph.Node("Expand", [grouped, graph.Int64Vector(1, 1, heads / kvHeads, 1, 1)]);
            return graph.Node("Reshape", [repeated, graph.Int64Vector(0, heads, -1, headSize)]);
        }

        // Without a position_ids input a token's position is the number of real tokens before it,
        // counted from the attention mask (so left padding does not shift positions), for this step's tokens.
        string PositionsFromMask()
        {
            var oneStep = graph.Int64Scalar(1);
            var counted = graph.Node("Sub", [graph.Node("CumSum", [DecoderIo.AttentionMask, oneStep]), graph.Int64Scalar(1)]);
            var notNegative = graph.Node("Max", [counted, graph.Int64Scalar(0)]);
            var sequence = graph.Node("Shape", [DecoderIo.InputIds], IntAttribute("start", 1), IntAttribute("end", 2));
            return graph.Node("Slice", [notNegative, graph.Node("Neg", [sequence]), graph.Int64Vector(long.MaxValue), graph.Int64Vector(1)]);
        }

        // [batch, 1, sequence, total]: key j is visible to query i when it is not padding and
        // j <= past + i; past is derived as total - sequence, exactly as Optimum exports do.
        string AttentionAllowed()
        {
            var zero = graph.Int64Scalar(0);
            var oneStep = graph.Int64Scalar(1);
            var sequence = graph.Node("Gather", [graph.Node("Shape", [DecoderIo.InputIds]), oneStep], IntAttribute("axis", 0));
            var total = graph.Node("Gather", [graph.Node("Shape", [DecoderIo.AttentionMask]), oneStep], IntAttribute("axis", 0));
            var past = graph.Node("Sub", [total, sequence]);
            var keyPositions = graph.Node("Range", [zero, total, oneStep]);
            var queryPositions = graph.Node("Unsqueeze", [graph.Node("Range", [past, total, oneStep]), graph.Int64Vector(1)]);
            var causal = graph.Node("LessOrEqual", [keyPositions, queryPositions]);
            var notPadding = graph.Node("Unsqueeze",
                [graph.Node("Cast", [DecoderIo.AttentionMask], IntAttribute("to", (long)DataType.Bool)), graph.Int64Vector(1, 2)]);
            return graph.Node("And", [causal, notPadding]);
        }
    }

    private static void AddMetadata(ModelProto model, string key, object value) =>
        model.MetadataProps.Add(new StringStringEntryProto
        {
            Key = $"bastion.{key}",
            Value = Convert.ToString(value, CultureInfo.InvariantCulture),
        });
}
