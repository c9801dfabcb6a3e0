using System.Collections.Frozen;
using System.Security.Cryptography;
using Bastion.Diagnostics;
using Bastion.Guards;
using Bastion.Inference;

namespace Bastion.Generation;

/// <summary>A model this silo serves.</summary>
/// <param name="Name">The name clients ask for.</param>
/// <param name="ContextLength">The most tokens (prompt plus completion) one sequence may hold.</param>
/// <param name="Created">When the model was loaded.</param>
/// <param name="ExecutionProvider">Where it runs: CUDA or CPU.</param>
public sealed record ModelInfo(string Name, int ContextLength, DateTimeOffset Created, ExecutionProviderKind ExecutionProvider);

/// <summary>A validated request, tokenized and ready to decode.</summary>
/// <param name="Model">The model's name.</param>
/// <param name="PromptTokens">The prompt, tokenized.</param>
/// <param name="MaxNewTokens">The most tokens to generate.</param>
/// <param name="Sampling">How tokens are chosen.</param>
/// <param name="Stop">Sequences that end the completion.</param>
/// <param name="Operation">What the request asked for, as <c>gen_ai.operation.name</c>: <c>text_completion</c> or <c>chat</c>.</param>
/// <param name="Choices">How many completions of the prompt to generate, each its own sequence.</param>
/// <param name="Logprobs">Alternatives per token's log probability; null for no log probabilities.</param>
public sealed record PreparedGeneration(
    string Model, int[] PromptTokens, int MaxNewTokens, SamplingOptions Sampling, IReadOnlyList<string> Stop, string Operation = BastionMetrics.TextCompletionOperation,
    int Choices = 1, int? Logprobs = null)
{
    /// <summary>The most tokens the generation may count: the prompt once, and <see cref="MaxNewTokens"/> per choice.</summary>
    public long MaxTotalTokens => PromptTokens.Length + ((long)Choices * MaxNewTokens);

    /// <summary>How the completion is guarded (<see cref="OutputRedactor"/>); off unless the catalog sets it.</summary>
    public OutputGuardPolicy OutputGuard { get; init; } = OutputGuardPolicy.Off;

    public override string ToString() => $"PreparedGeneration {{ Model = {Model}, PromptTokens = {PromptTokens.Length}, MaxNewTokens = {MaxNewTokens}, Choices = {Choices} }}";
}

/// <summary>The models loaded on this worker silo, and the one place requests are checked against them.</summary>
/// <param name="time">The clock of model load times and token latencies.</param>
/// <param name="batching">Batch size, queue length and wait.</param>
/// <param name="metrics">Where token counts, latencies and guard hits go, if anywhere.</param>
/// <param name="outputGuard">How completions are guarded; the default redacts with every detector.</param>
public sealed class ModelCatalog(TimeProvider time, BatchingOptions? batching = null, BastionMetrics? metrics = null, OutputGuardPolicy? outputGuard = null) : IDisposable
{
    /// <summary>How many text pieces may wait unread before a sequence is set aside.</summary>
    public const int BufferCapacity = 64;

    private readonly BatchingOptions _batching = batching ?? new BatchingOptions();

    private sealed record LoadedModel(ModelInfo Info, DecoderModel Decoder, TextTokenizer Tokenizer, GenerationDefaults Defaults, ChatTemplate Template, BatchingEngine Engine);

    private FrozenDictionary<string, LoadedModel> _models = FrozenDictionary<string, LoadedModel>.Empty;

    /// <summary>True once at least one model is loaded.</summary>
    public bool IsReady => _models.Count > 0;

    public IReadOnlyList<ModelInfo> Models => [.. _models.Values.Select(m => m.Info).OrderBy(m => m.Name, StringComparer.Ordinal)];

    /// <summary>The models as this silo reports them to the cluster.</summary>
    public IReadOnlyList<ServedModel> Served => [.. Models.Select(m => new ServedModel(m.Name, m.ContextLength, m.Created))];

    /// <summary>
    /// Loads the checked model directory <paramref name="directory"/> as <paramref name="name"/>, from the very bytes its
    /// digest covers. Throws <see cref="InvalidDataException"/> naming the file at fault, for instance when the model has
    /// no context length.
    /// </summary>
    public void Load(string name, ModelDirectory directory, InferenceRuntimeOptions options, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var decoder = DecoderModel.Load(
            directory.ModelBytes, directory.ExternalData, directory.Defaults.ContextLength, options, logger, directory.Defaults.EosTokenId);
        Add(name, decoder, directory.Defaults, directory.Template, directory.Tokenizer);
    }

    /// <summary>
    /// Serves <paramref name="decoder"/> as <paramref name="name"/>; the catalog then owns it. Without the
    /// directory's files it gets greedy defaults, the default chat template and the GPT-2 tokenizer.
    /// </summary>
    public void Add(string name, DecoderModel decoder, GenerationDefaults? defaults = null, ChatTemplate? template = null, TextTokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        var info = new ModelInfo(name, decoder.ContextLength, time.GetUtcNow(), decoder.ExecutionProvider);
        tokenizer ??= TextTokenizer.CreateGpt2(decoder.EosTokenId);
        var engine = new BatchingEngine(decoder, tokenizer.Decode, _batching, time, name, metrics);
        var loaded = new LoadedModel(
            info, decoder, tokenizer, defaults ?? GenerationDefaults.Greedy with { EosTokenId = decoder.EosTokenId }, template ?? ChatTemplate.Default, engine);
        var models = new Dictionary<string, LoadedModel>(_models, StringComparer.Ordinal) { [name] = loaded };
        _models = models.ToFrozenDictionary(StringComparer.Ordinal);
        metrics?.SetModels(_models.Values.Select(m => KeyValuePair.Create(m.Info.Name, m.Info.ExecutionProvider.ToString().ToLowerInvariant())));
        metrics?.SetBatchingLoad(() => _models.Values.Select(m => new ModelLoad(m.Info.Name, m.Engine.QueueDepth, m.Engine.ActiveSequences)));
    }

    /// <summary>Tokenizes and checks a request; throws <see cref="GenerationRejectedException"/> when it cannot be served.</summary>
    public PreparedGeneration Prepare(GenerationRequest request)
    {
        if (!_models.TryGetValue(request.Model, out var model))
        {
            throw new GenerationRejectedException(GenerationRejectedException.ModelNotFound, $"The model '{request.Model}' does not exist.");
        }

        // Request text is never read as control tokens; chat messages cannot write the template's role markers.
        var tokens = request.Messages is { } messages ? model.Template.Encode(messages, model.Tokenizer) : model.Tokenizer.EncodePlainText(request.Prompt);
        if (tokens.Length == 0)
        {
            // GPT-2 cannot start from nothing; as in its training data, text begins after an end-of-text token.
            tokens = [model.Tokenizer.EndOfTextId];
        }

        // Values the request sets win; the rest come from the model's generation.json.
        var defaults = model.Defaults;
        var maxTokens = request.MaxTokens ?? defaults.MaxTokens;
        var requested = (long)tokens.Length + maxTokens;
        if (requested > model.Info.ContextLength)
        {
            throw new GenerationRejectedException(
                GenerationRejectedException.ContextLengthExceeded,
                $"This model's maximum context length is {model.Info.ContextLength} tokens; the request needs {requested} ({tokens.Length} in the prompt, {maxTokens} in 'max_tokens').");
        }

        var overrides = request.Overrides;
        var sampling = request.Sampling ?? new SamplingOptions(
            overrides?.Temperature ?? defaults.Temperature,
            overrides?.TopP ?? defaults.TopP,
            overrides?.TopK ?? defaults.TopK,
            // Without a seed, every request draws differently.
            overrides?.Seed ?? RandomNumberGenerator.GetInt32(int.MaxValue),
            overrides?.PresencePenalty ?? 0,
            overrides?.FrequencyPenalty ?? 0);
        var choices = request.Choices ?? 1;
        if (choices is < 1 or > GenerationRequest.MaxChoices || request.Logprobs is < 0 or > GenerationRequest.MaxTopLogprobs
            || Math.Abs(sampling.PresencePenalty) > SamplingOptions.MaxPenalty || Math.Abs(sampling.FrequencyPenalty) > SamplingOptions.MaxPenalty)
        {
            // The API checks these with messages of its own; this guards the gateway's callers and the sampler.
            throw new ArgumentOutOfRangeException(nameof(request), "The choices, log probabilities or penalties are out of range.");
        }

        return new PreparedGeneration(
            request.Model, tokens, maxTokens, sampling, request.Stop ?? defaults.Stop,
            request.Messages is null ? BastionMetrics.TextCompletionOperation : BastionMetrics.ChatOperation,
            choices, request.Logprobs)
        {
            OutputGuard = outputGuard ?? OutputGuardPolicy.Default,
        };
    }

    /// <summary>Queue depth and active sequences summed over this silo's engines: what placement compares.</summary>
    public (int QueueDepth, int ActiveSequences) BatchingLoad =>
        (_models.Values.Sum(m => m.Engine.QueueDepth), _models.Values.Sum(m => m.Engine.ActiveSequences));

    /// <summary>The continuous-batching engine of a model this silo serves.</summary>
    public BatchingEngine Engine(string model) => _models[model].Engine;

    /// <summary>
    /// Takes a place in the model's queue for a prepared generation; throws <see cref="GenerationRejectedException"/>
    /// (<c>overloaded</c>) when the queue is full, before anything is admitted or charged.
    /// </summary>
    public void Reserve(PreparedGeneration prepared)
    {
        if (!Engine(prepared.Model).TryReserve())
        {
            throw new GenerationRejectedException(GenerationRejectedException.Overloaded, "The model's queue is full; retry after the Retry-After interval.");
        }
    }

    /// <summary>
    /// Decodes with the KV cache in the model's batch, greedy or sampled; stops at end-of-text, a stop sequence,
    /// <c>max_tokens</c> or cancellation. Each piece of text goes to <paramref name="onText"/> as soon as it is safe
    /// to send; a slow <paramref name="onText"/> sets the sequence aside without holding back the batch.
    /// </summary>
    public async Task<GenerationResult> GenerateAsync(
        PreparedGeneration prepared, Func<string, CancellationToken, ValueTask>? onText, CancellationToken cancellationToken)
    {
        Reserve(prepared);
        var buffer = new CompletionBuffer(BufferCapacity);
        var run = Engine(prepared.Model).Enqueue("", prepared, buffer, cancellationToken);
        if (onText is null)
        {
            buffer.RemoveBound();
            return await run;
        }

        _ = run.ContinueWith(
            done =>
            {
                if (done.IsCompletedSuccessfully)
                {
                    buffer.Complete(done.Result);
                }
                else
                {
                    buffer.Fail(done.Exception?.InnerException ?? new OperationCanceledException());
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        try
        {
            for (var index = 0; ;)
            {
                var chunk = await buffer.ReadAsync(index, BufferCapacity, cancellationToken);
                foreach (var piece in chunk.Pieces)
                {
                    await onText(piece, cancellationToken);
                }

                index += chunk.Pieces.Count;
                if (chunk.Finished)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The engine ends the sequence within a step and reports what it generated.
        }

        return await run;
    }

    public void Dispose()
    {
        foreach (var model in _models.Values)
        {
            model.Engine.Dispose();
            model.Decoder.Dispose();
        }
    }
}
