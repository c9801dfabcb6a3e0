using Bastion.Access;
using Bastion.Audit;
using Bastion.Security;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary><c>POST /v1/auth/token</c>: exchanges an API key for a short-lived access token.</summary>
public static class AuthApi
{
    /// <summary>The per-client-address limit on token exchanges.</summary>
    public const string TokenExchangePolicy = "token-exchange";

    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder routes)
    {
        // The key in the body is the credential, so the route checks it itself instead of a bearer header.
        routes.MapPost("/v1/auth/token", ExchangeAsync).AllowAnonymousCaller().RequireRateLimiting(TokenExchangePolicy)
            .WithTags("Authentication").WithSummary("Exchanges an API key for a short-lived access token (a JWT).")
            .Accepts<TokenRequest>("application/json").Produces<TokenResponse>()
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        return routes;
    }

    private static async Task<Results<JsonHttpResult<TokenResponse>, ProblemHttpResult>> ExchangeAsync(
        HttpContext context, CallerAuthenticator authenticator, AccessTokens accessTokens, IGrainFactory grains, IAuditTrail audit, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.TokenRequest);
        if (problem is not null)
        {
            return problem;
        }

        if (request!.ApiKey is not { } apiKey || await authenticator.AuthenticateApiKeyAsync(context, apiKey) is not { } caller)
        {
            return Problems.Unauthorized();
        }

        var decision = await grains.GetGrain<IUserGrain>(caller.Pseudonym).AuthorizeAsync(caller.Credential, Permission.Infer);
        if (!decision.IsAllowed)
        {
            return Problems.Unauthorized();
        }

        var (token, expiresIn) = accessTokens.Issue(caller.Pseudonym, caller.Credential.KeyId, decision.RevocationGeneration);
        // Failed exchanges are 401s, counted in the authentication-failure summaries; each success is a record of its own.
        await audit.RecordAsync(new AuditRecord(
            time.GetUtcNow(), "auth.token-exchange", caller.Pseudonym, caller.Pseudonym, "200",
            caller.Credential.KeyId is { } keyId ? new Dictionary<string, string> { ["key_id"] = keyId } : null));
        return TypedResults.Json(new TokenResponse(token, "Bearer", expiresIn), ApiJsonContext.Default.TokenResponse);
    }
}
