using Bastion.Access;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>The caller's own account: <c>GET /v1/me</c>, <c>GET /v1/me/usage</c>, <c>DELETE /v1/me</c>.</summary>
public static class MeApi
{
    public static IEndpointRouteBuilder MapMeApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/me", GetAsync).RequirePermission(Permission.ReadOwnUsage)
            .WithTags("Account").WithSummary("Reads the caller's roles, API keys and usage.").Produces<ProfileResponse>();
        routes.MapGet("/v1/me/usage", GetUsageAsync).RequirePermission(Permission.ReadOwnUsage)
            .WithTags("Account").WithSummary("Reads the caller's token usage.").Produces<Usage>();
        routes.MapDelete("/v1/me", DeleteAsync).RequirePermission(Permission.ReadOwnUsage).Audited("user.delete", AuditTarget.Caller).RefusedWhileFrozen()
            .WithTags("Account").WithSummary("Erases the caller's account; only with the API key itself, never an access token.").Produces(StatusCodes.Status204NoContent);
        return routes;
    }

    internal static ProfileResponse ToResponse(string? id, UserProfile profile) => new(
        id,
        profile.Roles,
        profile.Suspended,
        [.. profile.ApiKeys.Select(k => new ApiKeyEntry(k.Id, k.Label, k.CreatedAt, k.ExpiresAt, k.Revoked))],
        profile.Requests,
        new Usage(profile.Usage.PromptTokens, profile.Usage.CompletionTokens, profile.Usage.TotalTokens));

    private static async Task<Results<JsonHttpResult<ProfileResponse>, ProblemHttpResult>> GetAsync(HttpContext context, IGrainFactory grains) =>
        await grains.GetGrain<IUserGrain>(context.Caller().Caller.Pseudonym).GetProfileAsync() is { } profile
            ? TypedResults.Json(ToResponse(null, profile), ApiJsonContext.Default.ProfileResponse)
            : Problems.Unauthorized();

    private static async Task<Results<JsonHttpResult<Usage>, ProblemHttpResult>> GetUsageAsync(HttpContext context, IGrainFactory grains) =>
        await grains.GetGrain<IUserGrain>(context.Caller().Caller.Pseudonym).GetProfileAsync() is { } profile
            ? TypedResults.Json(new Usage(profile.Usage.PromptTokens, profile.Usage.CompletionTokens, profile.Usage.TotalTokens), ApiJsonContext.Default.Usage)
            : Problems.Unauthorized();

    /// <summary>Erasure at the user's request. Only the API key itself may do this: a stolen short-lived token must not be able to.</summary>
    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(HttpContext context, UserErasure erasure)
    {
        var caller = context.Caller().Caller;
        if (caller.Credential.Kind != CredentialKind.ApiKey)
        {
            return Problems.Forbidden("Deleting your account needs your API key, not an access token.");
        }

        return await AdminApi.DeleteAsync(caller.Pseudonym, erasure);
    }
}
