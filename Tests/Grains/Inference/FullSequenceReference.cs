using Bastion.Inference;
using Microsoft.ML.OnnxRuntime;

namespace Bastion.Tests.Grains.Inference;

/// <summary>
/// The independent reference for served tokens: ONNX Runtime over the whole sequence every step,
/// with zero-length past (no KV cache) and argmax of the last position. Shares no code with the
/// decoder under test beyond the input names.
/// </summary>
public static class FullSequenceReference
{
    /// <summary>Greedy tokens and each step's last-position logits; stops after <paramref name="eosTokenId"/> when given.</summary>
    public static (List<int> Tokens, List<float[]> Logits) Run(byte[] model, IReadOnlyList<int> prompt, int steps, int? eosTokenId = null)
    {
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1 };
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        using var session = new InferenceSession(model, sessionOptions);
        var past = session.InputMetadata[DecoderIo.PastKey(0)].Dimensions;
        var (heads, headSize) = (past[1], past[3]);
        var layers = session.InputMetadata.Keys.Count(name => name.EndsWith(".key", StringComparison.Ordinal));
        var sequence = prompt.Select(t => (long)t).ToList();
        var tokens = new List<int>();
        var allLogits = new List<float[]>();

        for (var step = 0; step < steps; step++)
        {
            var length = sequence.Count;
            var names = new List<string> { DecoderIo.InputIds, DecoderIo.AttentionMask };
            var values = new List<OrtValue>
            {
                OrtValue.CreateTensorValueFromMemory(sequence.ToArray(), [1, length]),
                OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, length).ToArray(), [1, length]),
            };
            if (session.InputMetadata.ContainsKey(DecoderIo.PositionIds))
            {
                names.Add(DecoderIo.PositionIds);
                values.Add(OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, length).Select(p => (long)p).ToArray(), [1, length]));
            }

            for (var layer = 0; layer < layers; layer++)
            {
                names.Add(DecoderIo.PastKey(layer));
                values.Add(OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, heads, 0, headSize]));
                names.Add(DecoderIo.PastValue(layer));
                values.Add(OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [1, heads, 0, headSize]));
            }

            float[] lastLogits;
            try
            {
                using var runOptions = new RunOptions();
                using var results = session.Run(runOptions, names, values, [DecoderIo.Logits]);
                var logits = results[0].GetTensorDataAsSpan<float>();
                var vocab = logits.Length / length;
                lastLogits = logits.Slice((length - 1) * vocab, vocab).ToArray();
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

            allLogits.Add(lastLogits);
            if (best == eosTokenId)
            {
                break;
            }

            tokens.Add(best);
            sequence.Add(best);
        }

        return (tokens, allLogits);
    }

    /// <summary>The greedy completion tokens of the model file at <paramref name="modelPath"/>.</summary>
    public static List<int> GreedyTokens(string modelPath, IReadOnlyList<int> prompt, int steps, int eosTokenId) =>
        Run(File.ReadAllBytes(modelPath), prompt, steps, eosTokenId).Tokens;
}
