using System.Collections.Frozen;
using Bastion.Inference;

namespace Bastion.Generation;

/// <summary>A model this silo serves.</summary>
/// <param name="Name">The name clients ask for.</param>
/// <param name="ContextLength">The most tokens (prompt plus completion) one sequence may hold.</param>
/// <param name="Created">When the model was loaded.</param>
/// <param name="ExecutionProvider">Where it runs: CUDA or CPU.</param>
public sealed record ModelInfo(string Name, int ContextLength, DateTimeOffset Created, ExecutionProviderKind ExecutionProvider);

/// <summary>A validated request, tokenized and ready to decode.</summary>
public sealed record PreparedGeneration(string Model, int[] PromptTokens, int MaxNewTokens, SamplingOptions Sampling, IReadOnlyList<string> Stop)
{
    public override string ToString() => $"PreparedGeneration {{ Model = {Model}, PromptTokens = {PromptTokens.Length}, MaxNewTokens = {MaxNewTokens} }}";
}

/// <summary>The models loaded on this worker silo, and the one place requests are checked against them.</summary>
public sealed class ModelCatalog(TimeProvider time) : IDisposable
{
    private sealed record LoadedModel(ModelInfo Info, DecoderModel Decoder, TextTokenizer Tokenizer);

    private FrozenDictionary<string, LoadedModel> _models = FrozenDictionary<string, LoadedModel>.Empty;

    /// <summary>True once at least one model is loaded.</summary>
    public bool IsReady => _models.Count > 0;

    public IReadOnlyList<ModelInfo> Models => [.. _models.Values.Select(m => m.Info).OrderBy(m => m.Name, StringComparer.Ordinal)];

    /// <summary>Loads <paramref name="modelPath"/> as <paramref name="name"/>.</summary>
    public void Load(string name, string modelPath, InferenceRuntimeOptions options, Microsoft.Extensions.Logging.ILogger? logger = null) =>
        Add(name, DecoderModel.Load(modelPath, options, logger));

    /// <summary>Serves <paramref name="decoder"/> as <paramref name="name"/>, with the GPT-2 tokenizer; the catalog then owns it.</summary>
    public void Add(string name, DecoderModel decoder)
    {
        var info = new ModelInfo(name, decoder.ContextLength ?? int.MaxValue, time.GetUtcNow(), decoder.ExecutionProvider);
        var models = new Dictionary<string, LoadedModel>(_models, StringComparer.Ordinal) { [name] = new(info, decoder, TextTokenizer.CreateGpt2()) };
        _models = models.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Tokenizes and checks a request; throws <see cref="GenerationRejectedException"/> when it cannot be served.</summary>
    public PreparedGeneration Prepare(GenerationRequest request)
    {
        if (!_models.TryGetValue(request.Model, out var model))
        {
            throw new GenerationRejectedException(GenerationRejectedException.ModelNotFound, $"The model '{request.Model}' does not exist.");
        }

        var tokens = model.Tokenizer.EncodeToIds(request.Prompt);
        if (tokens.Length == 0)
        {
            // GPT-2 cannot start from nothing; as in its training data, text begins after an end-of-text token.
            tokens = [model.Tokenizer.EndOfTextId];
        }

        var requested = (long)tokens.Length + request.MaxTokens;
        if (requested > model.Info.ContextLength)
        {
            throw new GenerationRejectedException(
                GenerationRejectedException.ContextLengthExceeded,
                $"This model's maximum context length is {model.Info.ContextLength} tokens; the request needs {requested} ({tokens.Length} in the prompt, {request.MaxTokens} in 'max_tokens').");
        }

        return new PreparedGeneration(request.Model, tokens, request.MaxTokens, request.Sampling ?? SamplingOptions.Greedy, request.Stop ?? []);
    }

    /// <summary>
    /// Decodes with the KV cache, greedy or sampled; stops at end-of-text, a stop sequence, <c>max_tokens</c>
    /// or cancellation. Each piece of text goes to <paramref name="onText"/> as soon as it is safe to send;
    /// awaiting it is how a slow reader holds back decoding.
    /// </summary>
    public async Task<GenerationResult> GenerateAsync(
        PreparedGeneration prepared, Func<string, CancellationToken, ValueTask>? onText, CancellationToken cancellationToken)
    {
        var model = _models[prepared.Model];
        var text = new CompletionText(model.Tokenizer.Decode, prepared.Stop);
        var sampler = new TokenSampler(prepared.Sampling);
        var produced = 0;
        string finishReason;
        try
        {
            foreach (var token in model.Decoder.Generate(prepared.PromptTokens, prepared.MaxNewTokens, sampler, cancellationToken))
            {
                produced++;
                var piece = text.Add(token);
                if (piece.Length > 0 && onText is not null)
                {
                    await onText(piece, cancellationToken);
                }

                if (text.Stopped)
                {
                    break;
                }
            }

            finishReason = produced < prepared.MaxNewTokens || text.Stopped ? FinishReasons.Stop : FinishReasons.Length;
            var rest = text.Finish();
            if (rest.Length > 0 && onText is not null)
            {
                await onText(rest, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // What was generated before the cancellation still counts as usage.
            finishReason = FinishReasons.Cancelled;
        }

        return new GenerationResult(text.Text, new TokenUsage(prepared.PromptTokens.Length, produced), finishReason);
    }

    public void Dispose()
    {
        foreach (var model in _models.Values)
        {
            model.Decoder.Dispose();
        }
    }
}
