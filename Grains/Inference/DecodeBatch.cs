using Microsoft.ML.OnnxRuntime;

namespace Bastion.Inference;

/// <summary>
/// One sequence's key/value cache outside a batch: per layer, keys and values laid out
/// [kv heads, <see cref="Length"/>, head size], exactly one batch row of the model's <c>present</c> outputs.
/// </summary>
public sealed class SequenceCache(float[][] keys, float[][] values, int length)
{
    internal float[][] Keys { get; } = keys;

    internal float[][] Values { get; } = values;

    /// <summary>How many real tokens (prompt and generated) the cache holds.</summary>
    public int Length { get; } = length;
}

/// <summary>
/// A batch of sequences decoding one token per step together. Rows are left-padded to the longest
/// cache: padding has attention mask 0 and each row's positions are its own real positions, so a row
/// computes what it would compute alone. The presents of a step are the next step's pasts, uncopied;
/// the cache is copied only by <see cref="Pack"/> and <see cref="Unpack"/>, when rows join or leave.
/// Not thread-safe: one engine loop owns it.
/// </summary>
public sealed class DecodeBatch(DecoderModel model) : IDisposable
{
    private readonly RunOptions _runOptions = new();
    private readonly List<int> _lengths = [];
    private readonly List<int> _padding = [];
    private OrtValue[] _pasts = [];
    private IDisposableReadOnlyCollection<OrtValue>? _outputs;
    private int _pastLength;

    /// <summary>How many rows the batch holds.</summary>
    public int Count => _lengths.Count;

    /// <summary>The padded cache length every row shares.</summary>
    public int PastLength => _pastLength;

    /// <summary>
    /// Prefills sequences together, apart from the decoding batch: each prompt left-padded to the longest, padding
    /// masked and positions real, so each row computes what it would alone. Returns each row's cache (its padding
    /// left behind) and its last position's logits, in order.
    /// </summary>
    public IReadOnlyList<(SequenceCache Cache, float[] Logits)> Prefill(IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        ArgumentOutOfRangeException.ThrowIfZero(prompts.Count, nameof(prompts));
        var rows = prompts.Count;
        var longest = prompts.Max(p => p.Count);
        var tokens = new long[rows * longest];
        var mask = new long[rows * longest];
        var positions = new long[rows * longest];
        for (var row = 0; row < rows; row++)
        {
            var prompt = prompts[row];
            var padding = longest - prompt.Count;
            for (var i = 0; i < prompt.Count; i++)
            {
                var at = (row * longest) + padding + i;
                tokens[at] = prompt[i];
                mask[at] = 1;
                positions[at] = i;
            }
        }

        var emptyShape = new long[] { rows, model.Heads, 0, model.HeadSize };
        var pasts = new OrtValue[model.Layers * 2];
        for (var i = 0; i < pasts.Length; i++)
        {
            pasts[i] = OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), emptyShape);
        }

        try
        {
            using var outputs = model.Run(_runOptions, tokens, mask, positions, [rows, longest], pasts);
            OrtValue[] presents = [.. outputs.Skip(1)];
            var logits = outputs[0].GetTensorDataAsSpan<float>();
            var result = new (SequenceCache, float[])[rows];
            for (var row = 0; row < rows; row++)
            {
                var last = ((row * longest) + longest - 1) * model.VocabSize;
                result[row] = (CopyRow(presents, row, padded: longest, padding: longest - prompts[row].Count), logits.Slice(last, model.VocabSize).ToArray());
            }

            return result;
        }
        finally
        {
            foreach (var past in pasts)
            {
                past.Dispose();
            }
        }
    }

    /// <summary>
    /// Replaces the batch's rows with <paramref name="caches"/>, left-padded to the longest one (so padding
    /// every row shared is trimmed).
    /// </summary>
    public void Pack(IReadOnlyList<SequenceCache> caches)
    {
        Release();
        _lengths.Clear();
        _padding.Clear();
        _pastLength = caches.Count == 0 ? 0 : caches.Max(c => c.Length);
        foreach (var cache in caches)
        {
            _lengths.Add(cache.Length);
            _padding.Add(_pastLength - cache.Length);
        }

        if (caches.Count == 0)
        {
            return;
        }

        var rowSize = model.Heads * _pastLength * model.HeadSize;
        var shape = new long[] { caches.Count, model.Heads, _pastLength, model.HeadSize };
        _pasts = new OrtValue[model.Layers * 2];
        for (var layer = 0; layer < model.Layers; layer++)
        {
            for (var kind = 0; kind < 2; kind++)
            {
                var packed = new float[caches.Count * rowSize];
                for (var row = 0; row < caches.Count; row++)
                {
                    var source = kind == 0 ? caches[row].Keys[layer] : caches[row].Values[layer];
                    var length = caches[row].Length;
                    for (var head = 0; head < model.Heads; head++)
                    {
                        var from = head * length * model.HeadSize;
                        var to = ((row * model.Heads + head) * _pastLength + _padding[row]) * model.HeadSize;
                        Array.Copy(source, from, packed, to, length * model.HeadSize);
                    }
                }

                _pasts[layer * 2 + kind] = OrtValue.CreateTensorValueFromMemory(packed, shape);
            }
        }
    }

    /// <summary>Copies row <paramref name="row"/>'s real cache out of the batch (the padding stays behind).</summary>
    public SequenceCache Unpack(int row)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)Count, nameof(row));
        return CopyRow(CurrentPasts(), row, _pastLength, _padding[row]);
    }

    /// <summary>
    /// Runs one decode step: row i takes <paramref name="tokens"/>[i] as its next input. Returns each row's
    /// logits [rows × vocab], valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Step(ReadOnlySpan<long> tokens)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(tokens.Length, Count, nameof(tokens));
        var rows = Count;
        var total = _pastLength + 1;
        var mask = new long[rows * total];
        var positions = new long[rows];
        for (var row = 0; row < rows; row++)
        {
            mask.AsSpan(row * total + _padding[row], total - _padding[row]).Fill(1L);
            positions[row] = _lengths[row];
        }

        var outputs = model.Run(_runOptions, tokens.ToArray(), mask, positions, [rows, 1], CurrentPasts());
        Release();
        _outputs = outputs;
        _pastLength = total;
        for (var row = 0; row < rows; row++)
        {
            _lengths[row]++;
        }

        return outputs[0].GetTensorDataAsSpan<float>()[..(rows * model.VocabSize)];
    }

    /// <summary>Aborts a step in flight (on shutdown).</summary>
    public void Terminate() => _runOptions.Terminate = true;

    public void Dispose()
    {
        Release();
        _runOptions.Dispose();
    }

    private OrtValue[] CurrentPasts() => _outputs is null ? _pasts : [.. _outputs.Skip(1)];

    private SequenceCache CopyRow(OrtValue[] pasts, int row, int padded, int padding)
    {
        var length = padded - padding;
        var keys = new float[model.Layers][];
        var values = new float[model.Layers][];
        for (var layer = 0; layer < model.Layers; layer++)
        {
            keys[layer] = CopyRow(pasts[layer * 2].GetTensorDataAsSpan<float>(), row, padded, padding, length);
            values[layer] = CopyRow(pasts[layer * 2 + 1].GetTensorDataAsSpan<float>(), row, padded, padding, length);
        }

        return new SequenceCache(keys, values, length);
    }

    private float[] CopyRow(ReadOnlySpan<float> source, int row, int padded, int padding, int length)
    {
        var copy = new float[model.Heads * length * model.HeadSize];
        for (var head = 0; head < model.Heads; head++)
        {
            source.Slice(((row * model.Heads + head) * padded + padding) * model.HeadSize, length * model.HeadSize)
                .CopyTo(copy.AsSpan(head * length * model.HeadSize));
        }

        return copy;
    }

    private void Release()
    {
        if (_outputs is not null)
        {
            _outputs.Dispose();
            _outputs = null;
        }

        foreach (var past in _pasts)
        {
            past.Dispose();
        }

        _pasts = [];
    }
}
