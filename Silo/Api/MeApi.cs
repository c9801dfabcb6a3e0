using Bastion.Access;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary><c>GET /v1/me</c>: the caller's roles, keys and usage.</summary>
public static class MeApi
{
    public static IEndpointRouteBuilder MapMeApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/me", GetAsync).RequirePermission(Permission.ReadOwnUsage);
        return routes;
    }

    private static async Task<Results<JsonHttpResult<MeResponse>, ProblemHttpResult>> GetAsync(HttpContext context, IGrainFactory grains)
    {
        var profile = await grains.GetGrain<IUserGrain>(context.Caller().Caller.Pseudonym).GetProfileAsync();
        if (profile is null)
        {
            return Problems.Unauthorized();
        }

        var usage = new Usage(profile.Usage.PromptTokens, profile.Usage.CompletionTokens, profile.Usage.TotalTokens);
        return TypedResults.Json(new MeResponse(profile.Roles, profile.ApiKeyIds, profile.Requests, usage), ApiJsonContext.Default.MeResponse);
    }
}
