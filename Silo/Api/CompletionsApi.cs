using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Bastion.Access;
using Bastion.Generation;
using Bastion.Security;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>
/// The OpenAI-compatible inference routes: <c>POST /v1/completions</c> and
/// <c>POST /v1/chat/completions</c>, each answering at once or, with <c>stream: true</c>, as server-sent events.
/// </summary>
public static class CompletionsApi
{
    private const int MaxPromptCharacters = 64 * 1024;
    private const int MaxStopSequences = GenerationDefaults.MaxStopSequences;
    private const int MaxStopLength = 64;
    private const int ReadBatch = 32;

    /// <summary>Legacy completions list at most five alternatives per token, as OpenAI does.</summary>
    private const int MaxCompletionLogprobs = 5;

    public static IEndpointRouteBuilder MapCompletionsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/v1/completions", CompleteAsync).RequirePermission(Permission.Infer);
        routes.MapPost("/v1/chat/completions", CompleteChatAsync).RequirePermission(Permission.Infer);
        return routes;
    }

    private static async Task<IResult> CompleteAsync(HttpContext context, IGrainFactory grains, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.CompletionRequest);
        if (problem is not null)
        {
            return problem;
        }

        if ((ValidatePrompt(request!) ?? ValidateParameters(request!)) is { } invalid)
        {
            return invalid;
        }

        if (request!.Logprobs is < 0 or > MaxCompletionLogprobs)
        {
            return Problems.InvalidRequest($"The field 'logprobs' must lie between 0 and {MaxCompletionLogprobs}.", "logprobs");
        }

        return await GenerateAsync(context, grains, time, request!, request!.Prompt!, null, new CompletionShape());
    }

    private static async Task<IResult> CompleteChatAsync(HttpContext context, IGrainFactory grains, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.ChatCompletionRequest);
        if (problem is not null)
        {
            return problem;
        }

        if ((ValidateMessages(request!, out var contents) ?? ValidateParameters(request!)) is { } invalid)
        {
            return invalid;
        }

        if (request!.TopLogprobs is { } top && (top is < 0 or > GenerationRequest.MaxTopLogprobs || request.Logprobs != true))
        {
            return Problems.InvalidRequest($"The field 'top_logprobs' must lie between 0 and {GenerationRequest.MaxTopLogprobs}, with 'logprobs': true.", "top_logprobs");
        }

        // The worker renders the messages with the model's own chat template (its chat_template.json).
        var messages = request.Messages!.Select((m, i) => new PromptMessage(m.Role!, contents[i])).ToArray();
        if (messages.Sum(m => (long)m.Content.Length) > MaxPromptCharacters)
        {
            return Problems.InvalidRequest($"The messages are longer than {MaxPromptCharacters} characters.");
        }

        return await GenerateAsync(context, grains, time, request, string.Empty, messages, new ChatShape());
    }

    private static async Task<IResult> GenerateAsync(
        HttpContext context, IGrainFactory grains, TimeProvider time, IGenerationParameters request, string prompt, PromptMessage[]? messages, IResponseShape shape)
    {
        var caller = context.Caller().Caller;

        // What the request leaves out comes from the model's generation.json, on the worker that serves it.
        var generationRequest = new GenerationRequest(
            request.Model!,
            prompt,
            request.MaxTokens,
            Stop: StopSequences(request.Stop),
            Messages: messages,
            Overrides: new SamplingOverrides(request.Temperature, request.TopP, request.TopK, request.Seed, request.PresencePenalty, request.FrequencyPenalty),
            Choices: request.N,
            Logprobs: request.LogprobAlternatives);
        try
        {
            // The user grain learns the client's network as a keyed hash only, for its anomaly detection.
            var network = context.RequestServices.GetRequiredService<ClientNetworks>().Hash(caller.Pseudonym, context.Connection.RemoteIpAddress);
            var submission = await grains.GetGrain<IUserGrain>(caller.Pseudonym).SubmitAsync(caller.Credential with { ClientNetwork = network }, generationRequest);
            if (submission.GenerationId is not { } generationId)
            {
                return submission.Decision.Reason switch
                {
                    DenialReason.LimitExceeded => RateLimitHeaders.Refuse(context, submission.Limit!),
                    DenialReason.Forbidden => Problems.Forbidden(),
                    _ => Problems.Unauthorized(),
                };
            }

            if (submission.Limit is { } standing)
            {
                RateLimitHeaders.Write(context, standing);
            }

            var generation = grains.GetGrain<IGenerationGrain>(generationId);
            // The public id is its own random value: the generation's grain key never leaves the cluster.
            var header = new ResponseHeader(
                shape.IdPrefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)), time.GetUtcNow().ToUnixTimeSeconds(), generationRequest.Model,
                request.N ?? 1, request.LogprobAlternatives is not null);
            if (request.Stream == true)
            {
                var includeUsage = request.StreamOptions?.IncludeUsage == true;
                return TypedResults.ServerSentEvents(StreamAsync(context, generation, shape, header, includeUsage, context.RequestAborted));
            }

            GenerationResult result;
            try
            {
                result = await generation.GetResultAsync(context.RequestAborted);
            }
            catch
            {
                // The client left or the wait failed: nobody will take this result, so stop decoding it.
                await CancelQuietlyAsync(generation);
                throw;
            }

            if (result.FinishReason == FinishReasons.Cancelled)
            {
                // Only suspension or revocation cancels a generation: the credential no longer holds.
                return Problems.Unauthorized();
            }

            return shape.Response(header, result);
        }
        catch (GenerationRejectedException rejected)
        {
            switch (rejected.Code)
            {
                case GenerationRejectedException.ModelNotFound:
                    return Problems.ModelNotFound(rejected.Message);
                case GenerationRejectedException.Overloaded:
                    // Refused before the user grain admitted it: nothing was charged.
                    context.Response.Headers.RetryAfter = "1";
                    return Problems.Overloaded(rejected.Message);
                case GenerationRejectedException.WorkerUnavailable:
                    context.Response.Headers.RetryAfter = RetryAfterSeconds;
                    return Problems.Unavailable(rejected.Message);
                case GenerationRejectedException.InputRejected:
                    return Problems.InputRejected(rejected.Message);
                case GenerationRejectedException.InferenceStopped:
                    context.Response.Headers.RetryAfter = "60";
                    return Problems.InferenceStopped(rejected.Message);
                default:
                    return Problems.ContextLengthExceeded(rejected.Message);
            }
        }
        catch (Exception exception) when (IsSiloFailure(exception))
        {
            // The silo holding the user's grain or the generation died, or is stopping: the cluster moves the
            // grain within its membership timeouts, so the request can be retried.
            context.Response.Headers.RetryAfter = RetryAfterSeconds;
            return Problems.Unavailable(UnavailableDetail);
        }
    }

    private const string RetryAfterSeconds = "2";

    private const string UnavailableDetail = "A silo serving this request stopped; retry after the Retry-After interval.";

    /// <summary>Failures that a retry on the surviving silos can fix: a dead or stopping silo, a lost response.</summary>
    private static bool IsSiloFailure(Exception exception) => exception is OrleansMessageRejectionException or TimeoutException
        or Orleans.Runtime.Messaging.ConnectionFailedException or GenerationRejectedException { Code: GenerationRejectedException.WorkerUnavailable };

    /// <summary>
    /// Reads the generation's bounded buffer and frames each batch as an OpenAI chunk. A reader that goes away
    /// (the client disconnected) cancels the generation, so decoding stops within one step.
    /// </summary>
    internal static async IAsyncEnumerable<SseItem<string>> StreamAsync(
        HttpContext context, IGenerationGrain generation, IResponseShape shape, ResponseHeader header, bool includeUsage,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var finished = false;
        try
        {
            for (var choice = 0; choice < header.Choices; choice++)
            {
                if (shape.Opening(header, choice) is { } opening)
                {
                    yield return Data(opening);
                }
            }

            // Where each choice's next piece starts in its text (legacy completions' text_offset).
            var offsets = new int[header.Choices];

            var next = 0;

            // A write to a client that went away may still succeed into Kestrel's buffers; the abort
            // token is what says the reader is gone.
            while (!cancellationToken.IsCancellationRequested)
            {
                GenerationChunk? chunk = null;
                var retryable = false;
                try
                {
                    chunk = await generation.ReadAsync(next, ReadBatch, cancellationToken);
                }
                catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    // Reported to the client as a problem without internals. The read may have failed while the generation
                    // still decodes (a timeout, a lost reply), so it is cancelled below: nobody reads it any more.
                    retryable = IsSiloFailure(exception);
                }

                if (chunk is null)
                {
                    yield return retryable
                        ? new SseItem<string>(Problem(context, StatusCodes.Status503ServiceUnavailable, "unavailable", "The service is unavailable.", UnavailableDetail), "error")
                        : new SseItem<string>(Problem(context, StatusCodes.Status500InternalServerError, "internal-error", "The generation failed.", "The generation failed after the stream started."), "error");
                    yield return Data("[DONE]");
                    yield break;
                }

                next += chunk.Pieces.Count;
                foreach (var (choice, text, logprobs) in Runs(chunk))
                {
                    yield return Data(shape.Piece(header, choice, text, logprobs, offsets[choice]));
                    offsets[choice] += text.Length;
                }

                if (chunk.Result is not { } result)
                {
                    continue;
                }

                finished = true;
                if (result.FinishReason == FinishReasons.Cancelled)
                {
                    yield return new SseItem<string>(Problem(context, StatusCodes.Status401Unauthorized, "unauthorized", "Authentication failed.", "A valid API key or access token is required."), "error");
                }
                else
                {
                    var choices = result.AllChoices;
                    for (var choice = 0; choice < choices.Count; choice++)
                    {
                        yield return Data(shape.Finish(header, choice, choices[choice].FinishReason));
                    }

                    if (includeUsage)
                    {
                        yield return Data(shape.Usage(header, ToUsage(result.Usage)));
                    }
                }

                yield return Data("[DONE]");
                yield break;
            }
        }
        finally
        {
            if (!finished)
            {
                await CancelQuietlyAsync(generation);
            }
        }
    }

    /// <summary>
    /// Cancels a generation nobody will read further, so that its batch slot and the user's concurrency lease are freed
    /// now rather than when the worker's set-aside timeout runs out. Best effort: the worker may be gone, and with it the
    /// generation.
    /// </summary>
    private static async Task CancelQuietlyAsync(IGenerationGrain generation)
    {
        try
        {
            await generation.CancelAsync();
        }
        catch (Exception exception) when (exception is OrleansException or TimeoutException)
        {
            // Nothing left to cancel, or nobody to reach; the set-aside timeout and the lease's expiry end it regardless.
        }
    }

    private static SseItem<string> Data(string data) => new(data);

    /// <summary>
    /// A chunk's pieces as runs of one choice each, text and log probabilities joined: one event per run. A run with
    /// neither text nor log probabilities sends nothing.
    /// </summary>
    private static IEnumerable<(int Choice, string Text, TokenLogprob[]? Logprobs)> Runs(GenerationChunk chunk)
    {
        for (var start = 0; start < chunk.Pieces.Count;)
        {
            var choice = chunk.ChoiceOf(start);
            var end = start + 1;
            while (end < chunk.Pieces.Count && chunk.ChoiceOf(end) == choice)
            {
                end++;
            }

            var text = string.Concat(chunk.Pieces.Skip(start).Take(end - start));
            TokenLogprob[]? logprobs = chunk.Logprobs is null ? null : [.. Enumerable.Range(start, end - start).SelectMany(i => chunk.LogprobsOf(i) ?? [])];
            if (text.Length > 0 || logprobs is { Length: > 0 })
            {
                yield return (choice, text, logprobs);
            }

            start = end;
        }
    }

    private static string Problem(HttpContext context, int status, string type, string title, string detail) => JsonSerializer.Serialize(
        new StreamProblem(Problems.TypePrefix + type, title, status, detail, Problems.TraceId(context)), ApiJsonContext.Default.StreamProblem);

    private static Usage ToUsage(TokenUsage usage) => new(usage.PromptTokens, usage.CompletionTokens, usage.TotalTokens);

    private static string[]? StopSequences(JsonElement? stop) => stop switch
    {
        { ValueKind: JsonValueKind.String } one => [one.GetString()!],
        { ValueKind: JsonValueKind.Array } many => [.. many.EnumerateArray().Select(s => s.GetString()!)],
        _ => null,
    };

    private static ProblemHttpResult? ValidatePrompt(CompletionRequest request) => request switch
    {
        { Prompt: null } => Problems.InvalidRequest("The field 'prompt' is required and must be a string."),
        { Prompt.Length: > MaxPromptCharacters } => Problems.InvalidRequest($"The field 'prompt' is longer than {MaxPromptCharacters} characters."),
        _ => null,
    };

    /// <summary>Checks the messages, and gives each one's text: a string content as it is, an array of text parts joined by newlines.</summary>
    private static ProblemHttpResult? ValidateMessages(ChatCompletionRequest request, out string[] contents)
    {
        contents = [];
        if (request.Messages is not { Count: > 0 } messages)
        {
            return Problems.InvalidRequest("The field 'messages' is required and must hold at least one message.");
        }

        var texts = new string[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not { Role: { } role } || !ChatTemplate.Roles.Contains(role))
            {
                return Problems.InvalidRequest($"The message 'messages[{i}]' needs a 'role' (system, user or assistant) and a string 'content'.", $"messages[{i}].role");
            }

            switch (messages[i].Content)
            {
                case { ValueKind: JsonValueKind.String } text:
                    texts[i] = text.GetString()!;
                    break;
                case { ValueKind: JsonValueKind.Array } parts:
                    var joined = new List<string>();
                    var index = 0;
                    foreach (var part in parts.EnumerateArray())
                    {
                        var name = $"messages[{i}].content[{index++}]";
                        if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                        {
                            return Problems.InvalidRequest($"The content part '{name}' must be an object with a string 'type'.", name);
                        }

                        if (type.GetString() != "text")
                        {
                            // The type is echoed only when it is a plain short name: it is the caller's text.
                            var shown = type.GetString() is { Length: <= 32 } t && t.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? $" '{t}'" : string.Empty;
                            return Problems.InvalidRequest($"The content part '{name}' is of a type{shown} this server does not support; only 'text' parts are.", name);
                        }

                        if (!part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                        {
                            return Problems.InvalidRequest($"The content part '{name}' needs a string 'text'.", name);
                        }

                        joined.Add(partText.GetString()!);
                    }

                    texts[i] = string.Join('\n', joined);
                    break;
                default:
                    return Problems.InvalidRequest(
                        $"The field 'messages[{i}].content' must be a string or an array of text parts.", $"messages[{i}].content");
            }
        }

        contents = texts;
        return null;
    }

    private static ProblemHttpResult? ValidateParameters(IGenerationParameters request) => UnsupportedFields.Check(request.Extra) ?? request switch
    {
        { Model: null or "" } => Problems.InvalidRequest("The field 'model' is required."),
        { MaxTokens: < 1 } => Problems.InvalidRequest("The field 'max_tokens' must be at least 1."),
        { N: < 1 or > GenerationRequest.MaxChoices } => Problems.InvalidRequest($"The field 'n' must lie between 1 and {GenerationRequest.MaxChoices}.", "n"),
        { PresencePenalty: < -SamplingOptions.MaxPenalty or > SamplingOptions.MaxPenalty } => Problems.InvalidRequest("The field 'presence_penalty' must lie between -2 and 2.", "presence_penalty"),
        { FrequencyPenalty: < -SamplingOptions.MaxPenalty or > SamplingOptions.MaxPenalty } => Problems.InvalidRequest("The field 'frequency_penalty' must lie between -2 and 2.", "frequency_penalty"),
        { Temperature: < 0 or > 2 } => Problems.InvalidRequest("The field 'temperature' must lie between 0 and 2."),
        { TopP: <= 0 or > 1 } => Problems.InvalidRequest("The field 'top_p' must be greater than 0 and at most 1."),
        { TopK: < 0 } => Problems.InvalidRequest("The field 'top_k' must be 0 (no limit) or more."),
        _ => ValidateStop(request.Stop),
    };

    private static ProblemHttpResult? ValidateStop(JsonElement? stop)
    {
        var valid = stop switch
        {
            null or { ValueKind: JsonValueKind.Null } => true,
            { ValueKind: JsonValueKind.String } one => IsValidStop(one),
            { ValueKind: JsonValueKind.Array } many => many.GetArrayLength() <= MaxStopSequences && many.EnumerateArray().All(IsValidStop),
            _ => false,
        };
        return valid ? null : Problems.InvalidRequest(
            $"The field 'stop' must be a string or an array of up to {MaxStopSequences} strings, each of 1 to {MaxStopLength} UTF-16 code units.");
    }

    // Every decode step looks for each stop string, and for each of its prefixes at the end of the text
    // (quadratic in its length), and a stream holds back up to a stop string's length of text: the cap
    // bounds both. Stop sequences are short phrases in practice.
    private static bool IsValidStop(JsonElement stop) =>
        stop.ValueKind == JsonValueKind.String && stop.GetString()!.Length is > 0 and <= MaxStopLength;

    /// <summary>What every chunk of one response repeats, and what the request asked for: <c>n</c> choices, log probabilities or not.</summary>
    internal sealed record ResponseHeader(string Id, long Created, string Model, int Choices = 1, bool Logprobs = false);

    /// <summary>What differs between text and chat completions: the objects around the same generation.</summary>
    internal interface IResponseShape
    {
        string IdPrefix { get; }

        IResult Response(ResponseHeader header, GenerationResult result);

        string? Opening(ResponseHeader header, int choice);

        // textOffset: where the text starts in its choice's text (legacy completions' text_offset).
        string Piece(ResponseHeader header, int choice, string text, TokenLogprob[]? logprobs, int textOffset);

        string Finish(ResponseHeader header, int choice, string finishReason);

        string Usage(ResponseHeader header, Usage usage);
    }

    internal sealed class CompletionShape : IResponseShape
    {
        private const string ChunkObject = "text_completion";

        public string IdPrefix => "cmpl-";

        public IResult Response(ResponseHeader header, GenerationResult result) => TypedResults.Json(
            new CompletionResponse(
                header.Id, ChunkObject, header.Created, header.Model,
                [.. result.AllChoices.Select((c, i) => new CompletionChoice(c.Text, i, header.Logprobs ? Logprobs(c.Logprobs ?? [], 0) : null, c.FinishReason))],
                ToUsage(result.Usage)),
            ApiJsonContext.Default.CompletionResponse);

        public string? Opening(ResponseHeader header, int choice) => null;

        public string Piece(ResponseHeader header, int choice, string text, TokenLogprob[]? logprobs, int textOffset) =>
            Chunk(header, [new CompletionChunkChoice(text, choice, logprobs is null ? null : Logprobs(logprobs, textOffset), null)], null);

        public string Finish(ResponseHeader header, int choice, string finishReason) => Chunk(header, [new CompletionChunkChoice(string.Empty, choice, null, finishReason)], null);

        public string Usage(ResponseHeader header, Usage usage) => Chunk(header, [], usage);

        /// <summary>Legacy parallel lists; an alternative whose text another one already has keeps the first (likelier) value.</summary>
        private static CompletionLogprobs Logprobs(TokenLogprob[] entries, int textOffset)
        {
            var offsets = new int[entries.Length];
            for (var i = 0; i < entries.Length; i++)
            {
                offsets[i] = textOffset;
                textOffset += entries[i].Token.Length;
            }

            return new CompletionLogprobs(
                [.. entries.Select(e => e.Token)],
                [.. entries.Select(e => e.Logprob)],
                [.. entries.Select(e => (IReadOnlyDictionary<string, float>)e.Top.DistinctBy(t => t.Token, StringComparer.Ordinal).ToDictionary(t => t.Token, t => t.Logprob, StringComparer.Ordinal))],
                offsets);
        }

        private static string Chunk(ResponseHeader header, IReadOnlyList<CompletionChunkChoice> choices, Usage? usage) => JsonSerializer.Serialize(
            new CompletionChunk(header.Id, ChunkObject, header.Created, header.Model, choices, usage), ApiJsonContext.Default.CompletionChunk);
    }

    private sealed class ChatShape : IResponseShape
    {
        private const string ChunkObject = "chat.completion.chunk";

        public string IdPrefix => "chatcmpl-";

        public IResult Response(ResponseHeader header, GenerationResult result) => TypedResults.Json(
            new ChatCompletionResponse(header.Id, "chat.completion", header.Created, header.Model,
                [.. result.AllChoices.Select((c, i) => new ChatChoice(i, new ChatResponseMessage("assistant", c.Text), header.Logprobs ? Logprobs(c.Logprobs ?? []) : null, c.FinishReason))],
                ToUsage(result.Usage)),
            ApiJsonContext.Default.ChatCompletionResponse);

        // As OpenAI does, each choice's first chunk names the role and carries no content.
        public string? Opening(ResponseHeader header, int choice) => Chunk(header, [new ChatChunkChoice(choice, new ChatDelta("assistant", string.Empty), null, null)], null);

        public string Piece(ResponseHeader header, int choice, string text, TokenLogprob[]? logprobs, int textOffset) =>
            Chunk(header, [new ChatChunkChoice(choice, new ChatDelta(null, text), logprobs is null ? null : Logprobs(logprobs), null)], null);

        public string Finish(ResponseHeader header, int choice, string finishReason) => Chunk(header, [new ChatChunkChoice(choice, new ChatDelta(null, null), null, finishReason)], null);

        public string Usage(ResponseHeader header, Usage usage) => Chunk(header, [], usage);

        private static ChatLogprobs Logprobs(TokenLogprob[] entries) => new(
            [.. entries.Select(e => new ChatTokenLogprob(e.Token, e.Logprob, Bytes(e.Token), [.. e.Top.Select(t => new ChatTopLogprob(t.Token, t.Logprob, Bytes(t.Token)))]))]);

        private static int[] Bytes(string text) => [.. System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

        private static string Chunk(ResponseHeader header, IReadOnlyList<ChatChunkChoice> choices, Usage? usage) => JsonSerializer.Serialize(
            new ChatCompletionChunk(header.Id, ChunkObject, header.Created, header.Model, choices, usage), ApiJsonContext.Default.ChatCompletionChunk);
    }
}
