using Bastion.Access;
using Bastion.Generation;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>The OpenAI-compatible inference routes: <c>GET /v1/models</c> and <c>POST /v1/completions</c>.</summary>
public static class CompletionsApi
{
    public static IEndpointRouteBuilder MapCompletionsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/models", ListModels).RequirePermission(Permission.ListModels);
        routes.MapPost("/v1/completions", CompleteAsync).RequirePermission(Permission.Infer);
        return routes;
    }

    private static JsonHttpResult<ModelList> ListModels(ModelCatalog models) => TypedResults.Json(
        new ModelList("list", [.. models.Models.Select(m => new ModelEntry(m.Name, "model", m.Created.ToUnixTimeSeconds(), "bastion"))]),
        ApiJsonContext.Default.ModelList);

    private static async Task<Results<JsonHttpResult<CompletionResponse>, ProblemHttpResult>> CompleteAsync(
        HttpContext context, IGrainFactory grains, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.CompletionRequest);
        if (problem is not null)
        {
            return problem;
        }

        if (Validate(request!) is { } invalid)
        {
            return invalid;
        }

        var caller = context.Caller().Caller;
        var generationRequest = new GenerationRequest(request!.Model!, request.Prompt!, request.MaxTokens ?? DefaultMaxTokens);
        try
        {
            var submission = await grains.GetGrain<IUserGrain>(caller.Pseudonym).SubmitAsync(caller.Credential, generationRequest);
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

            var result = await grains.GetGrain<IGenerationGrain>(generationId).GetResultAsync(context.RequestAborted);
            if (result.FinishReason == FinishReasons.Cancelled)
            {
                // Only suspension or revocation cancels a generation: the credential no longer holds.
                return Problems.Unauthorized();
            }

            var usage = new Usage(result.Usage.PromptTokens, result.Usage.CompletionTokens, result.Usage.TotalTokens);
            return TypedResults.Json(new CompletionResponse(
                "cmpl-" + generationId.ToString("N"),
                "text_completion",
                time.GetUtcNow().ToUnixTimeSeconds(),
                generationRequest.Model,
                [new CompletionChoice(result.Text, 0, null, result.FinishReason)],
                usage),
                ApiJsonContext.Default.CompletionResponse);
        }
        catch (GenerationRejectedException rejected)
        {
            return rejected.Code == GenerationRejectedException.ModelNotFound
                ? Problems.ModelNotFound(rejected.Message)
                : Problems.ContextLengthExceeded(rejected.Message);
        }
    }

    private const int DefaultMaxTokens = 16;
    private const int MaxPromptCharacters = 64 * 1024;

    private static ProblemHttpResult? Validate(CompletionRequest request) => request switch
    {
        { Model: null or "" } => Problems.InvalidRequest("The field 'model' is required."),
        { Prompt: null } => Problems.InvalidRequest("The field 'prompt' is required and must be a string."),
        { Prompt.Length: > MaxPromptCharacters } => Problems.InvalidRequest($"The field 'prompt' is longer than {MaxPromptCharacters} characters."),
        { MaxTokens: < 1 } => Problems.InvalidRequest("The field 'max_tokens' must be at least 1."),
        { Stream: true } => Problems.InvalidRequest("Streaming ('stream': true) is not supported yet."),
        { N: not (null or 1) } => Problems.InvalidRequest("Only one choice ('n': 1) is supported."),
        _ => null,
    };
}
