using System.Globalization;
using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace Bastion.Inference;

/// <summary>
/// A decoder-only language model in the Optimum decoder-with-past layout, with greedy KV-cache
/// generation. Thread-safe: concurrent generations share the session, each with its own cache.
/// </summary>
public sealed class DecoderModel : IDisposable
{
    /// <summary>GPT-2's <c>&lt;|endoftext|&gt;</c>.</summary>
    public const int DefaultEosTokenId = 50256;

    private readonly ProviderSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;

    /// <summary>The metadata key under which a model records its context length (the generated models do).</summary>
    public const string ContextLengthMetadataKey = "bastion.n_ctx";

    private DecoderModel(ProviderSession session, int eosTokenId, int? configuredContextLength)
    {
        _session = session;
        EosTokenId = eosTokenId;
        var inputs = session.Session.InputMetadata;
        var outputs = session.Session.OutputMetadata;

        RequireInput(inputs, DecoderIo.InputIds);
        RequireInput(inputs, DecoderIo.AttentionMask);
        HasPositionIds = inputs.ContainsKey(DecoderIo.PositionIds);

        Layers = 0;
        while (inputs.ContainsKey(DecoderIo.PastKey(Layers)))
        {
            Layers++;
        }

        if (Layers == 0)
        {
            throw new InvalidDataException($"The model has no '{DecoderIo.PastKey(0)}' input; it is not a decoder with past.");
        }

        // [batch, heads, past, head_size]: heads and head size are fixed, batch and past are symbolic.
        var pastShape = inputs[DecoderIo.PastKey(0)].Dimensions;
        if (pastShape.Length != 4 || pastShape[1] <= 0 || pastShape[3] <= 0)
        {
            throw new InvalidDataException($"'{DecoderIo.PastKey(0)}' must have a fixed [batch, heads, past, head_size] shape.");
        }

        Heads = pastShape[1];
        HeadSize = pastShape[3];

        if (!outputs.TryGetValue(DecoderIo.Logits, out var logits) || logits.Dimensions.Length != 3 || logits.Dimensions[2] <= 0)
        {
            throw new InvalidDataException($"The model has no '{DecoderIo.Logits}' output of shape [batch, sequence, vocab].");
        }

        VocabSize = logits.Dimensions[2];
        ContextLength = ResolveContextLength(session.Session.ModelMetadata.CustomMetadataMap, configuredContextLength);

        var names = new List<string> { DecoderIo.InputIds, DecoderIo.AttentionMask };
        if (HasPositionIds)
        {
            names.Add(DecoderIo.PositionIds);
        }

        var outputNames = new List<string> { DecoderIo.Logits };
        for (var layer = 0; layer < Layers; layer++)
        {
            names.Add(DecoderIo.PastKey(layer));
            names.Add(DecoderIo.PastValue(layer));
            outputNames.Add(DecoderIo.PresentKey(layer));
            outputNames.Add(DecoderIo.PresentValue(layer));
        }

        _inputNames = [.. names];
        _outputNames = [.. outputNames];
    }

    public int Layers { get; }

    public int Heads { get; }

    public int HeadSize { get; }

    public int VocabSize { get; }

    /// <summary>
    /// Longest prompt plus completion a sequence may hold: the configured value, or else what the model records.
    /// Every model has one, so <c>max_tokens</c> is always bounded.
    /// </summary>
    public int ContextLength { get; }

    public bool HasPositionIds { get; }

    public int EosTokenId { get; }

    /// <summary>The provider the session runs on: CUDA or CPU.</summary>
    public ExecutionProviderKind ExecutionProvider => _session.Provider;

    internal InferenceSession Session => _session.Session;

    /// <summary>Loads a model file by path (benchmarks); served models load from their verified bytes instead.</summary>
    public static DecoderModel Load(string modelPath, InferenceRuntimeOptions options, ILogger? logger = null, int eosTokenId = DefaultEosTokenId) =>
        Wrap(new OnnxSessionFactory(options, logger).Create(modelPath), eosTokenId, null);

    public static DecoderModel Load(byte[] model, InferenceRuntimeOptions options, ILogger? logger = null, int eosTokenId = DefaultEosTokenId) =>
        Wrap(new OnnxSessionFactory(options, logger).Create(model), eosTokenId, null);

    /// <summary>
    /// Loads <paramref name="model"/> with its external data from <paramref name="externalData"/>, both exactly the
    /// bytes that were hashed. <paramref name="contextLength"/> (from <c>generation.json</c>) may lower what the model
    /// records, never raise it; without either, the model is refused (<see cref="InvalidDataException"/>).
    /// </summary>
    public static DecoderModel Load(
        byte[] model, IReadOnlyList<ExternalDataFile> externalData, int? contextLength, InferenceRuntimeOptions options, ILogger? logger = null, int eosTokenId = DefaultEosTokenId) =>
        Wrap(new OnnxSessionFactory(options, logger).Create(model, externalData), eosTokenId, contextLength);

    /// <summary>
    /// Greedy decoding with a KV cache, yielding each token as it is produced. Stops after
    /// <paramref name="maxNewTokens"/> tokens, at the context length, or at EOS (not yielded).
    /// Cancellation is checked between steps and also aborts a step in flight.
    /// </summary>
    public IEnumerable<int> GenerateGreedy(IReadOnlyList<int> promptTokens, int maxNewTokens, CancellationToken cancellationToken) =>
        GenerateGreedy(promptTokens, maxNewTokens, observer: null, cancellationToken);

    /// <summary>As the public overload; <paramref name="observer"/> sees each step's last-position logits.</summary>
    internal IEnumerable<int> GenerateGreedy(
        IReadOnlyList<int> promptTokens, int maxNewTokens, LogitsObserver? observer, CancellationToken cancellationToken) =>
        Generate(promptTokens, maxNewTokens, sampler: null, observer, cancellationToken);

    /// <summary>
    /// As <see cref="GenerateGreedy(IReadOnlyList{int}, int, CancellationToken)"/>, choosing each token with
    /// <paramref name="sampler"/> instead of the argmax.
    /// </summary>
    public IEnumerable<int> Generate(IReadOnlyList<int> promptTokens, int maxNewTokens, TokenSampler sampler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        return Generate(promptTokens, maxNewTokens, sampler, observer: null, cancellationToken);
    }

    private IEnumerable<int> Generate(
        IReadOnlyList<int> promptTokens, int maxNewTokens, TokenSampler? sampler, LogitsObserver? observer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(promptTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        if (promptTokens.Count == 0)
        {
            throw new ArgumentException("The prompt must hold at least one token.", nameof(promptTokens));
        }

        foreach (var token in promptTokens)
        {
            if ((uint)token >= (uint)VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(promptTokens), token, $"Token ids must lie in [0, {VocabSize}).");
            }
        }

        if (promptTokens.Count > ContextLength)
        {
            throw new ArgumentException($"The prompt has {promptTokens.Count} tokens; the model's context is {ContextLength}.", nameof(promptTokens));
        }

        return GenerateCore(promptTokens, MaxNewTokensWithinContext(promptTokens.Count, maxNewTokens), sampler, observer, cancellationToken);
    }

    /// <summary>How many tokens a generation may add to a prompt of <paramref name="promptLength"/> tokens.</summary>
    public int MaxNewTokensWithinContext(int promptLength, int maxNewTokens) => Math.Clamp(ContextLength - promptLength, 0, maxNewTokens);

    public void Dispose() => _session.Dispose();

    private static DecoderModel Wrap(ProviderSession session, int eosTokenId, int? contextLength)
    {
        try
        {
            return new DecoderModel(session, eosTokenId, contextLength);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static int ResolveContextLength(IReadOnlyDictionary<string, string> metadata, int? configured)
    {
        int? recorded = null;
        if (metadata.TryGetValue(ContextLengthMetadataKey, out var text))
        {
            recorded = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                ? n
                : throw new InvalidDataException($"{Gpt2ModelBuilder.ModelFileName}: the metadata '{ContextLengthMetadataKey}' must be a positive whole number of tokens, not '{text}'.");
        }

        return (configured, recorded) switch
        {
            ({ } set, { } max) when set > max => throw new InvalidDataException(
                $"{GenerationDefaultsFileName}: 'context_length' is {set}, more than the {max} positions {Gpt2ModelBuilder.ModelFileName} records ('{ContextLengthMetadataKey}')."),
            ({ } set, _) => set,
            (null, { } max) => max,
            _ => throw new InvalidDataException(
                $"{GenerationDefaultsFileName}: 'context_length' is missing, and {Gpt2ModelBuilder.ModelFileName} records none ('{ContextLengthMetadataKey}' metadata). " +
                "Every model needs one, so that 'max_tokens' is bounded: set it to the model's maximum positions (Hugging Face config.json: 'max_position_embeddings' or 'n_positions')."),
        };
    }

    // The file name lives with GenerationDefaults (Bastion.Generation); repeated here so this layer does not depend on that one.
    private const string GenerationDefaultsFileName = "generation.json";

    private static void RequireInput(IReadOnlyDictionary<string, NodeMetadata> inputs, string name)
    {
        if (!inputs.ContainsKey(name))
        {
            throw new InvalidDataException($"The model has no '{name}' input.");
        }
    }

    private IEnumerable<int> GenerateCore(
        IReadOnlyList<int> promptTokens, int maxNewTokens, TokenSampler? sampler, LogitsObserver? observer, CancellationToken cancellationToken)
    {
        if (maxNewTokens == 0)
        {
            yield break;
        }

        using var runOptions = new RunOptions();
        // Terminate aborts a Run in flight, so cancellation lands within one decode step.
        using var registration = cancellationToken.Register(static state => ((RunOptions)state!).Terminate = true, runOptions);
        var inputs = new OrtValue[_inputNames.Length];
        var pastOffset = HasPositionIds ? 3 : 2;
        IDisposableReadOnlyCollection<OrtValue>? previous = null;
        try
        {
            var emptyPast = new long[] { 1, Heads, 0, HeadSize };
            for (var i = pastOffset; i < inputs.Length; i++)
            {
                inputs[i] = OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), emptyPast);
            }

            var stepTokens = new long[promptTokens.Count];
            for (var i = 0; i < stepTokens.Length; i++)
            {
                stepTokens[i] = promptTokens[i];
            }

            var pastLength = 0;
            for (var produced = 0; produced < maxNewTokens; produced++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var outputs = RunStep(runOptions, inputs, pastOffset, stepTokens, pastLength, cancellationToken);

                // The inputs of this step are spent: the first step's empty pasts are ours, later
                // ones are the previous step's presents, released with that step's outputs.
                if (previous is null)
                {
                    for (var i = pastOffset; i < inputs.Length; i++)
                    {
                        inputs[i].Dispose();
                    }
                }

                previous?.Dispose();
                previous = outputs;
                pastLength += stepTokens.Length;

                var last = LastPositionLogits(outputs[0], stepTokens.Length);
                observer?.Invoke(produced, last);
                var next = sampler is null ? TensorPrimitives.IndexOfMax(last) : sampler.Next(last);
                if (next == EosTokenId)
                {
                    yield break;
                }

                yield return next;

                // Feed the presents straight back as the next pasts: no copy, no NamedOnnxValue.
                for (var i = pastOffset; i < inputs.Length; i++)
                {
                    inputs[i] = outputs[i - pastOffset + 1];
                }

                stepTokens = [next];
            }
        }
        finally
        {
            if (previous is null)
            {
                for (var i = pastOffset; i < inputs.Length; i++)
                {
                    inputs[i]?.Dispose();
                }
            }

            previous?.Dispose();
        }
    }

    private IDisposableReadOnlyCollection<OrtValue> RunStep(
        RunOptions runOptions, OrtValue[] inputs, int pastOffset, long[] stepTokens, int pastLength, CancellationToken cancellationToken)
    {
        var totalLength = pastLength + stepTokens.Length;
        var mask = new long[totalLength];
        Array.Fill(mask, 1L);
        var positions = new long[stepTokens.Length];
        for (var i = 0; i < positions.Length; i++)
        {
            positions[i] = pastLength + i;
        }

        using var inputIds = OrtValue.CreateTensorValueFromMemory(stepTokens, [1, stepTokens.Length]);
        using var attentionMask = OrtValue.CreateTensorValueFromMemory(mask, [1, totalLength]);
        using var positionIds = OrtValue.CreateTensorValueFromMemory(positions, [1, positions.Length]);
        inputs[0] = inputIds;
        inputs[1] = attentionMask;
        if (HasPositionIds)
        {
            inputs[2] = positionIds;
        }

        try
        {
            return _session.Session.Run(runOptions, _inputNames, inputs, _outputNames);
        }
        catch (OnnxRuntimeException ex) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("Generation was cancelled during a decode step.", ex, cancellationToken);
        }
        finally
        {
            Array.Clear(inputs, 0, pastOffset);
        }
    }

    /// <summary>
    /// One run with explicit inputs, for <see cref="DecodeBatch"/>: <paramref name="pasts"/> alternate key and
    /// value per layer; positions are passed only when the model has that input (otherwise it derives them
    /// from the mask). The caller owns the outputs: logits first, then the presents in the same order.
    /// </summary>
    internal IDisposableReadOnlyCollection<OrtValue> Run(
        RunOptions runOptions, long[] tokens, long[] mask, long[] positions, long[] tokenShape, IReadOnlyList<OrtValue> pasts)
    {
        var pastOffset = HasPositionIds ? 3 : 2;
        using var inputIds = OrtValue.CreateTensorValueFromMemory(tokens, tokenShape);
        using var attentionMask = OrtValue.CreateTensorValueFromMemory(mask, [tokenShape[0], mask.Length / tokenShape[0]]);
        using var positionIds = OrtValue.CreateTensorValueFromMemory(positions, tokenShape);
        var inputs = new OrtValue[_inputNames.Length];
        inputs[0] = inputIds;
        inputs[1] = attentionMask;
        if (HasPositionIds)
        {
            inputs[2] = positionIds;
        }

        for (var i = 0; i < pasts.Count; i++)
        {
            inputs[pastOffset + i] = pasts[i];
        }

        return _session.Session.Run(runOptions, _inputNames, inputs, _outputNames);
    }

    private ReadOnlySpan<float> LastPositionLogits(OrtValue logits, int sequenceLength) =>
        logits.GetTensorDataAsSpan<float>().Slice((sequenceLength - 1) * VocabSize, VocabSize);
}

/// <summary>Sees the logits a decode step chose its token from (step 0 is the prompt).</summary>
internal delegate void LogitsObserver(int step, ReadOnlySpan<float> lastPositionLogits);
