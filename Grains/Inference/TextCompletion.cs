namespace Bastion.Inference;

/// <summary>Prompt in, completion out: tokenizer and decoder together, with exact usage counts.</summary>
public sealed class TextCompletion(TextTokenizer tokenizer, DecoderModel model)
{
    public const string FinishReasonStop = "stop";
    public const string FinishReasonLength = "length";

    private readonly TextTokenizer _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
    private readonly DecoderModel _model = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>
    /// Greedy completion of <paramref name="prompt"/>. <see cref="CompletionResult.FinishReason"/>
    /// is <c>stop</c> when the model emitted EOS, <c>length</c> when <paramref name="maxTokens"/>
    /// or the context ran out first.
    /// </summary>
    public CompletionResult Complete(string prompt, int maxTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);

        var promptTokens = _tokenizer.EncodeToIds(prompt);
        if (promptTokens.Length == 0)
        {
            // GPT-2 cannot start from nothing; like its training data, begin after an end of text.
            promptTokens = [_tokenizer.EndOfTextId];
        }

        var limit = _model.MaxNewTokensWithinContext(promptTokens.Length, maxTokens);
        var completion = new List<int>(limit);
        completion.AddRange(_model.GenerateGreedy(promptTokens, limit, cancellationToken));

        var finishReason = completion.Count < limit ? FinishReasonStop : FinishReasonLength;
        return new CompletionResult(_tokenizer.Decode(completion), promptTokens.Length, completion.Count, finishReason);
    }
}

/// <summary>A finished completion and its token usage.</summary>
/// <param name="Text">The completion, without the prompt.</param>
/// <param name="PromptTokens">Tokens fed to the model as the prompt.</param>
/// <param name="CompletionTokens">Tokens generated into <paramref name="Text"/> (EOS excluded).</param>
/// <param name="FinishReason"><c>stop</c> or <c>length</c>.</param>
public sealed record CompletionResult(string Text, int PromptTokens, int CompletionTokens, string FinishReason);
