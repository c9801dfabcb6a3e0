using Bastion.Access;
using Bastion.Generation;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>The models the cluster serves, in OpenAI's shape: <c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>.</summary>
public static class ModelsApi
{
    private const string OwnedBy = "bastion";

    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/models", ListAsync).RequirePermission(Permission.ListModels)
            .WithTags("Models").WithSummary("Lists the models the cluster serves.")
            .Produces<ModelList>();
        routes.MapGet("/v1/models/{id}", GetAsync).RequirePermission(Permission.ListModels)
            .WithTags("Models").WithSummary("Describes one model the cluster serves.")
            .Produces<ModelEntry>().ProducesProblem(StatusCodes.Status404NotFound);
        return routes;
    }

    private static async Task<JsonHttpResult<ModelList>> ListAsync(ClusterModels models) =>
        TypedResults.Json(new ModelList("list", [.. (await models.ListAsync()).Select(ToEntry)]), ApiJsonContext.Default.ModelList);

    private static async Task<Results<JsonHttpResult<ModelEntry>, ProblemHttpResult>> GetAsync(string id, ClusterModels models) =>
        (await models.ListAsync()).FirstOrDefault(m => m.Name == id) is { } model
            ? TypedResults.Json(ToEntry(model), ApiJsonContext.Default.ModelEntry)
            : Problems.ModelNotFound($"The model '{id}' does not exist.");

    private static ModelEntry ToEntry(ServedModel model) => new(model.Name, "model", model.Created.ToUnixTimeSeconds(), OwnedBy, model.ContextLength);
}
