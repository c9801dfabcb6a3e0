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
/// The OpenAI-compatible inference routes: <c>GET /v1/models</c>, <c>POST /v1/completions</c> and
/// <c>POST /v1/chat/completions</c>, each answering at once or, with <c>stream: true</c>, as server-sent events.
/// </summary>
public static class CompletionsApi
{
    private const int MaxPromptCharacters = 64 * 1024;
    private const int MaxStopSequences = GenerationDefaults.MaxStopSequences;
    private const int MaxStopLength = 64;
    private const int ReadBatch = 32;

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

        return await GenerateAsync(context, grains, time, request!, request!.Prompt!, null, new CompletionShape());
    }

    private static async Task<IResult> CompleteChatAsync(HttpContext context, IGrainFactory grains, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.ChatCompletionRequest);
        if (problem is not null)
        {
            return problem;
        }

        if ((ValidateMessages(request!) ?? ValidateParameters(request!)) is { } invalid)
        {
            return invalid;
        }

        // The worker renders the messages with the model's own chat template (its chat_template.json).
        var messages = request!.Messages!.Select(m => new PromptMessage(m.Role!, m.Content!)).ToArray();
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
            Overrides: new SamplingOverrides(request.Temperature, request.TopP, request.TopK, request.Seed));
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
            var header = new ResponseHeader(shape.IdPrefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)), time.GetUtcNow().ToUnixTimeSeconds(), generationRequest.Model);
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
            if (shape.Opening(header) is { } opening)
            {
                yield return Data(opening);
            }

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
                var text = string.Concat(chunk.Pieces);
                if (text.Length > 0)
                {
                    yield return Data(shape.Piece(header, text));
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
                    yield return Data(shape.Finish(header, result.FinishReason));
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

    private static ProblemHttpResult? ValidateMessages(ChatCompletionRequest request)
    {
        if (request.Messages is not { Count: > 0 } messages)
        {
            return Problems.InvalidRequest("The field 'messages' is required and must hold at least one message.");
        }

        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not { Role: { } role, Content: not null } || !ChatTemplate.Roles.Contains(role))
            {
                return Problems.InvalidRequest($"The message 'messages[{i}]' needs a 'role' (system, user or assistant) and a string 'content'.");
            }
        }

        return null;
    }

    private static ProblemHttpResult? ValidateParameters(IGenerationParameters request) => request switch
    {
        { Model: null or "" } => Problems.InvalidRequest("The field 'model' is required."),
        { MaxTokens: < 1 } => Problems.InvalidRequest("The field 'max_tokens' must be at least 1."),
        { N: not (null or 1) } => Problems.InvalidRequest("Only one choice ('n': 1) is supported."),
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

    internal sealed record ResponseHeader(string Id, long Created, string Model);

    /// <summary>What differs between text and chat completions: the objects around the same generation.</summary>
    internal interface IResponseShape
    {
        string IdPrefix { get; }

        IResult Response(ResponseHeader header, GenerationResult result);

        string? Opening(ResponseHeader header);

        string Piece(ResponseHeader header, string text);

        string Finish(ResponseHeader header, string finishReason);

        string Usage(ResponseHeader header, Usage usage);
    }

    internal sealed class CompletionShape : IResponseShape
    {
        private const string ChunkObject = "text_completion";

        public string IdPrefix => "cmpl-";

        public IResult Response(ResponseHeader header, GenerationResult result) => TypedResults.Json(
            new CompletionResponse(header.Id, ChunkObject, header.Created, header.Model, [new CompletionChoice(result.Text, 0, null, result.FinishReason)], ToUsage(result.Usage)),
            ApiJsonContext.Default.CompletionResponse);

        public string? Opening(ResponseHeader header) => null;

        public string Piece(ResponseHeader header, string text) => Chunk(header, [new CompletionChunkChoice(text, 0, null, null)], null);

        public string Finish(ResponseHeader header, string finishReason) => Chunk(header, [new CompletionChunkChoice(string.Empty, 0, null, finishReason)], null);

        public string Usage(ResponseHeader header, Usage usage) => Chunk(header, [], usage);

        private static string Chunk(ResponseHeader header, IReadOnlyList<CompletionChunkChoice> choices, Usage? usage) => JsonSerializer.Serialize(
            new CompletionChunk(header.Id, ChunkObject, header.Created, header.Model, choices, usage), ApiJsonContext.Default.CompletionChunk);
    }

    private sealed class ChatShape : IResponseShape
    {
        private const string ChunkObject = "chat.completion.chunk";

        public string IdPrefix => "chatcmpl-";

        public IResult Response(ResponseHeader header, GenerationResult result) => TypedResults.Json(
            new ChatCompletionResponse(header.Id, "chat.completion", header.Created, header.Model,
                [new ChatChoice(0, new ChatResponseMessage("assistant", result.Text), null, result.FinishReason)], ToUsage(result.Usage)),
            ApiJsonContext.Default.ChatCompletionResponse);

        // As OpenAI does, the first chunk names the role and carries no content.
        public string? Opening(ResponseHeader header) => Chunk(header, [new ChatChunkChoice(0, new ChatDelta("assistant", string.Empty), null, null)], null);

        public string Piece(ResponseHeader header, string text) => Chunk(header, [new ChatChunkChoice(0, new ChatDelta(null, text), null, null)], null);

        public string Finish(ResponseHeader header, string finishReason) => Chunk(header, [new ChatChunkChoice(0, new ChatDelta(null, null), null, finishReason)], null);

        public string Usage(ResponseHeader header, Usage usage) => Chunk(header, [], usage);

        private static string Chunk(ResponseHeader header, IReadOnlyList<ChatChunkChoice> choices, Usage? usage) => JsonSerializer.Serialize(
            new ChatCompletionChunk(header.Id, ChunkObject, header.Created, header.Model, choices, usage), ApiJsonContext.Default.ChatCompletionChunk);
    }
}
