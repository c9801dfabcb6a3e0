using System.Numerics.Tensors;
using Bastion.Generation;

namespace Bastion.Inference;

/// <summary>
/// Chooses each next token from a step's logits: first OpenAI's presence and frequency penalties over the tokens this
/// sampler chose so far, then greedy (argmax) when the temperature is 0 or top-k is 1, otherwise temperature, then
/// top-k, then top-p (nucleus) filtering, then a draw. Log probabilities, when asked for, are the log-softmax of the
/// penalized logits: the model's distribution after penalties, before temperature and filtering (as OpenAI reports
/// them). One instance per sequence, not thread-safe. The draws come from <see cref="Random"/> with an explicit seed, whose seeded
/// algorithm .NET keeps unchanged across versions for compatibility, so the same seed and logits give
/// the same tokens on every run.
/// </summary>
public sealed class TokenSampler
{
    private readonly float _temperature;
    private readonly float _topP;
    private readonly int _topK;
    private readonly Random? _random;
    private readonly float _presencePenalty;
    private readonly float _frequencyPenalty;
    private readonly Dictionary<int, int> _counts = [];
    private float[] _penalized = [];
    private float[] _weights = [];
    private float[] _sortKeys = [];
    private int[] _order = [];

    public TokenSampler(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Temperature);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.TopP);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TopP, 1f);
        ArgumentOutOfRangeException.ThrowIfNegative(options.TopK);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Math.Abs(options.PresencePenalty), SamplingOptions.MaxPenalty, nameof(options.PresencePenalty));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Math.Abs(options.FrequencyPenalty), SamplingOptions.MaxPenalty, nameof(options.FrequencyPenalty));
        _presencePenalty = options.PresencePenalty;
        _frequencyPenalty = options.FrequencyPenalty;
        _temperature = options.Temperature;
        _topP = options.TopP;
        _topK = options.TopK;
        IsGreedy = options.Temperature == 0 || options.TopK == 1;
        _random = IsGreedy ? null : new Random(unchecked((int)options.Seed ^ (int)(options.Seed >> 32)));
    }

    /// <summary>True when every choice is the argmax.</summary>
    public bool IsGreedy { get; }

    /// <summary>The next token for <paramref name="logits"/> (one value per vocabulary entry).</summary>
    public int Next(ReadOnlySpan<float> logits) => Next(logits, topLogprobs: -1, out _);

    /// <summary>
    /// The next token for <paramref name="logits"/>; with <paramref name="topLogprobs"/> 0 or more, also its log probability
    /// and that many most likely alternatives (in <paramref name="logprobs"/>, null otherwise).
    /// </summary>
    public int Next(ReadOnlySpan<float> logits, int topLogprobs, out SampledLogprobs? logprobs)
    {
        var effective = Penalize(logits);
        var token = Choose(effective);
        logprobs = topLogprobs < 0 ? null : SampledLogprobs.Of(effective, token, topLogprobs);
        if (_presencePenalty != 0 || _frequencyPenalty != 0)
        {
            _counts[token] = _counts.GetValueOrDefault(token) + 1;
        }

        return token;
    }

    /// <summary>
    /// OpenAI's penalties: logit −= frequency × count + presence × [count &gt; 0], over the tokens chosen so far. Only
    /// the tokens already chosen change, so the copy costs one pass over the vocabulary and the rest a few entries.
    /// </summary>
    private ReadOnlySpan<float> Penalize(ReadOnlySpan<float> logits)
    {
        if (_counts.Count == 0)
        {
            return logits;
        }

        if (_penalized.Length != logits.Length)
        {
            _penalized = new float[logits.Length];
        }

        logits.CopyTo(_penalized);
        foreach (var (token, count) in _counts)
        {
            _penalized[token] -= (_frequencyPenalty * count) + _presencePenalty;
        }

        return _penalized;
    }

    private int Choose(ReadOnlySpan<float> logits)
    {
        if (IsGreedy)
        {
            return TensorPrimitives.IndexOfMax(logits);
        }

        var count = logits.Length;
        if (_weights.Length != count)
        {
            _weights = new float[count];
            _sortKeys = new float[count];
            _order = new int[count];
        }

        // Unnormalized softmax weights, shifted by the maximum so exp never overflows.
        var max = TensorPrimitives.Max(logits);
        var weights = _weights.AsSpan();
        TensorPrimitives.Subtract(logits, max, weights);
        TensorPrimitives.Divide(weights, _temperature, weights);
        TensorPrimitives.Exp(weights, weights);

        var kept = count;
        if ((_topK > 0 && _topK < count) || _topP < 1f)
        {
            // Sorting the whole vocabulary (by negated weight: a primitive-key sort, no comparer) is simple and,
            // for ~50k entries, about a millisecond; top-k alone could select instead of sorting.
            for (var i = 0; i < count; i++)
            {
                _order[i] = i;
            }

            TensorPrimitives.Negate(weights, _sortKeys);
            Array.Sort(_sortKeys, _order);
            if (_topK > 0)
            {
                kept = Math.Min(_topK, count);
            }

            if (_topP < 1f)
            {
                var total = 0.0;
                for (var i = 0; i < kept; i++)
                {
                    total += weights[_order[i]];
                }

                var cumulative = 0.0;
                for (var i = 0; i < kept; i++)
                {
                    cumulative += weights[_order[i]];
                    if (cumulative >= _topP * total)
                    {
                        kept = i + 1;
                        break;
                    }
                }
            }

            return Draw(weights, _order.AsSpan(0, kept));
        }

        return Draw(weights, order: default);
    }

    private int Draw(ReadOnlySpan<float> weights, ReadOnlySpan<int> order)
    {
        var useOrder = !order.IsEmpty;
        var candidates = useOrder ? order.Length : weights.Length;
        var total = 0.0;
        for (var i = 0; i < candidates; i++)
        {
            total += weights[useOrder ? order[i] : i];
        }

        var target = _random!.NextDouble() * total;
        var cumulative = 0.0;
        for (var i = 0; i < candidates; i++)
        {
            var token = useOrder ? order[i] : i;
            cumulative += weights[token];
            if (target < cumulative)
            {
                return token;
            }
        }

        // Rounding can leave the target a hair above the sum: the last candidate takes it.
        return useOrder ? order[candidates - 1] : candidates - 1;
    }
}
