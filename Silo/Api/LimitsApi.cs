using Bastion.Access;
using Bastion.Limits;
using Bastion.Security;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary><c>PUT /admin/users/{id}/limits</c>: per-user overrides of the role's limits.</summary>
public static class LimitsApi
{
    private static readonly Dictionary<string, LimitAlgorithm> Algorithms = new(StringComparer.Ordinal)
    {
        ["token_bucket"] = LimitAlgorithm.TokenBucket,
        ["leaky_bucket"] = LimitAlgorithm.LeakyBucket,
        ["fixed_window"] = LimitAlgorithm.FixedWindow,
        ["sliding_window"] = LimitAlgorithm.SlidingWindow,
    };

    public static IEndpointRouteBuilder MapLimitsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPut("/admin/users/{id}/limits", SetAsync).RequirePermission(Permission.ManageUsers).Audited("user.limits").RefusedWhileFrozen()
            .WithTags("Administration").WithSummary("Overrides any subset of a user's limits; answers the effective limits.")
            .Accepts<LimitsBody>("application/json").Produces<LimitsBody>().ProducesProblem(StatusCodes.Status404NotFound);
        return routes;
    }

    private static async Task<Results<JsonHttpResult<LimitsBody>, ProblemHttpResult>> SetAsync(
        string id, HttpContext context, IGrainFactory grains, Pseudonymizer pseudonyms)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.LimitsBody);
        if (problem is not null)
        {
            return problem;
        }

        if ((AdminApi.ValidateUserId(id) ?? Validate(request!)) is { } invalid)
        {
            return invalid;
        }

        var overrides = new UserLimits(ToPolicy(request!.Requests), ToPolicy(request.Tokens), request.Concurrency, request.DailyTokens, request.MonthlyTokens);
        return await grains.GetGrain<IUserGrain>(pseudonyms.Pseudonymize(id)).SetLimitsAsync(overrides) is { } effective
            ? TypedResults.Json(ToBody(effective), ApiJsonContext.Default.LimitsBody)
            : Problems.NotFound("No user with this id exists.");
    }

    private static ProblemHttpResult? Validate(LimitsBody body)
    {
        foreach (var (name, policy) in new[] { ("requests", body.Requests), ("tokens", body.Tokens) })
        {
            if (policy is not null
                && (policy.Algorithm is null || !Algorithms.ContainsKey(policy.Algorithm)
                    || policy.Limit is not >= 1 || policy.WindowSeconds is not >= 1 || policy.WindowSeconds > (long)LimitPolicy.MaxWindow.TotalSeconds))
            {
                return Problems.InvalidRequest(
                    $"'{name}' needs 'algorithm' ({string.Join(", ", Algorithms.Keys)}), 'limit' ≥ 1 and 'window_seconds' between 1 and {(long)LimitPolicy.MaxWindow.TotalSeconds}.");
            }
        }

        return body.Concurrency is < 1 || body.DailyTokens is < 1 || body.MonthlyTokens is < 1
            ? Problems.InvalidRequest("'concurrency', 'daily_tokens' and 'monthly_tokens' must be at least 1.")
            : null;
    }

    private static LimitPolicy? ToPolicy(PolicyBody? body) =>
        body is null ? null : new LimitPolicy(Algorithms[body.Algorithm!], body.Limit!.Value, TimeSpan.FromSeconds(body.WindowSeconds!.Value));

    private static LimitsBody ToBody(UserLimits limits) =>
        new(ToBody(limits.Requests), ToBody(limits.Tokens), limits.Concurrency, limits.DailyTokens, limits.MonthlyTokens);

    private static PolicyBody? ToBody(LimitPolicy? policy) =>
        policy is null ? null : new PolicyBody(Algorithms.Single(pair => pair.Value == policy.Algorithm).Key, policy.Limit, (long)policy.Window.TotalSeconds);
}
