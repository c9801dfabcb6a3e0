using System.Runtime.InteropServices;
using Onnx;

namespace Bastion.Tests.Grains.Inference;

/// <summary>
/// GPT-2's forward pass written out in plain loops (double precision) over the builder's
/// initializers: an oracle for the ONNX graph that shares none of its code.
/// </summary>
internal sealed class Gpt2ReferenceForward
{
    private readonly Dictionary<string, float[]> _weights;
    private readonly int _width;
    private readonly int _heads;
    private readonly int _layers;
    private readonly int _vocab;

    public Gpt2ReferenceForward(byte[] model, int layers, int heads)
    {
        var proto = ModelProto.Parser.ParseFrom(model);
        _weights = proto.Graph.Initializer
            .Where(t => t.RawData.Length > 0)
            .ToDictionary(t => t.Name, t => MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray());
        var wte = proto.Graph.Initializer.Single(t => t.Name == "transformer.wte.weight");
        _vocab = (int)wte.Dims[0];
        _width = (int)wte.Dims[1];
        _layers = layers;
        _heads = heads;
    }

    /// <summary>Logits of the last position for <paramref name="tokens"/> at positions 0..n-1.</summary>
    public double[] LastLogits(IReadOnlyList<int> tokens)
    {
        var n = tokens.Count;
        var d = _width / _heads;
        var wte = _weights["transformer.wte.weight"];
        var wpe = _weights["transformer.wpe.weight"];
        var h = new double[n][];
        for (var t = 0; t < n; t++)
        {
            h[t] = new double[_width];
            for (var c = 0; c < _width; c++)
            {
                h[t][c] = (double)wte[(tokens[t] * _width) + c] + wpe[(t * _width) + c];
            }
        }

        for (var layer = 0; layer < _layers; layer++)
        {
            var p = $"transformer.h.{layer}";
            var qkv = h.Select(row => Linear(LayerNorm(row, $"{p}.ln_1"), $"{p}.attn.c_attn")).ToArray();
            var context = new double[n][];
            for (var i = 0; i < n; i++)
            {
                context[i] = new double[_width];
                for (var head = 0; head < _heads; head++)
                {
                    var scores = new double[i + 1];
                    for (var j = 0; j <= i; j++)
                    {
                        for (var c = 0; c < d; c++)
                        {
                            scores[j] += qkv[i][(head * d) + c] * qkv[j][_width + (head * d) + c];
                        }

                        scores[j] /= Math.Sqrt(d);
                    }

                    var max = scores.Max();
                    var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    var sum = weights.Sum();
                    for (var j = 0; j <= i; j++)
                    {
                        for (var c = 0; c < d; c++)
                        {
                            context[i][(head * d) + c] += weights[j] / sum * qkv[j][(2 * _width) + (head * d) + c];
                        }
                    }
                }
            }

            for (var t = 0; t < n; t++)
            {
                Add(h[t], Linear(context[t], $"{p}.attn.c_proj"));
                var up = Linear(LayerNorm(h[t], $"{p}.ln_2"), $"{p}.mlp.c_fc");
                var gelu = up.Select(x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + (0.044715 * x * x * x))))).ToArray();
                Add(h[t], Linear(gelu, $"{p}.mlp.c_proj"));
            }
        }

        var final = LayerNorm(h[n - 1], "transformer.ln_f");
        var logits = new double[_vocab];
        for (var v = 0; v < _vocab; v++)
        {
            for (var c = 0; c < _width; c++)
            {
                logits[v] += final[c] * wte[(v * _width) + c];
            }
        }

        return logits;
    }

    private static void Add(double[] into, double[] value)
    {
        for (var i = 0; i < into.Length; i++)
        {
            into[i] += value[i];
        }
    }

    private double[] LayerNorm(double[] x, string name)
    {
        var gamma = _weights[$"{name}.weight"];
        var beta = _weights[$"{name}.bias"];
        var mean = x.Average();
        var variance = x.Select(v => (v - mean) * (v - mean)).Average();
        var scale = 1 / Math.Sqrt(variance + 1e-5);
        return x.Select((v, i) => ((v - mean) * scale * gamma[i]) + beta[i]).ToArray();
    }

    private double[] Linear(double[] x, string name)
    {
        var weight = _weights[$"{name}.weight"];
        var bias = _weights[$"{name}.bias"];
        var outputs = bias.Length;
        var y = bias.Select(b => (double)b).ToArray();
        for (var i = 0; i < x.Length; i++)
        {
            for (var o = 0; o < outputs; o++)
            {
                y[o] += x[i] * weight[(i * outputs) + o];
            }
        }

        return y;
    }
}
