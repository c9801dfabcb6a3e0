using Bastion.Access;
using Bastion.Security;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>User and API-key administration under <c>/admin</c>.</summary>
public static class AdminApi
{
    private const int MaxUserIdLength = 128;
    private const int MaxLabelLength = 100;
    private const int MaxKeyLifetimeDays = 3650;

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder routes)
    {
        var admin = routes.MapGroup("/admin");
        admin.MapPost("/users", CreateUserAsync).RequirePermission(Permission.ManageUsers);
        admin.MapPost("/users/{id}/api-keys", CreateApiKeyAsync).RequirePermission(Permission.ManageUsers);
        return routes;
    }

    private static async Task<Results<JsonHttpResult<UserResponse>, ProblemHttpResult>> CreateUserAsync(
        HttpContext context, IGrainFactory grains, Pseudonymizer pseudonyms)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.CreateUserRequest);
        if (problem is not null)
        {
            return problem;
        }

        if (ValidateUserId(request!.Id) is { } invalidId)
        {
            return invalidId;
        }

        var roles = request.Roles ?? [Roles.User];
        if (roles.Count == 0 || roles.FirstOrDefault(role => !RolePermissions.IsKnown(role)) is { } unknown)
        {
            return Problems.InvalidRequest($"'roles' must name one or more of: {string.Join(", ", Roles.All)}.");
        }

        var created = await grains.GetGrain<IUserGrain>(pseudonyms.Pseudonymize(request.Id!)).CreateAsync(roles);
        return created
            ? Created(context, $"/admin/users/{Uri.EscapeDataString(request.Id!)}", new UserResponse(request.Id!, roles), ApiJsonContext.Default.UserResponse)
            : Problems.Conflict("A user with this id already exists.");
    }

    private static async Task<Results<JsonHttpResult<ApiKeyResponse>, ProblemHttpResult>> CreateApiKeyAsync(
        string id, HttpContext context, IGrainFactory grains, Pseudonymizer pseudonyms, ApiKeys apiKeys, TimeProvider time)
    {
        if (ValidateUserId(id) is { } invalidId)
        {
            return invalidId;
        }

        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.CreateApiKeyRequest);
        if (problem is not null)
        {
            return problem;
        }

        var label = request!.Label ?? "";
        if (label.Length > MaxLabelLength)
        {
            return Problems.InvalidRequest($"'label' must be at most {MaxLabelLength} characters.");
        }

        if (request.ExpiresInDays is < 1 or > MaxKeyLifetimeDays)
        {
            return Problems.InvalidRequest($"'expires_in_days' must be between 1 and {MaxKeyLifetimeDays}.");
        }

        var pseudonym = pseudonyms.Pseudonymize(id);
        var now = time.GetUtcNow();
        var expiresAt = request.ExpiresInDays is { } days ? now.AddDays(days) : (DateTimeOffset?)null;
        var (keyId, apiKey, hash, version) = apiKeys.Generate();
        if (!await grains.GetGrain<IUserGrain>(pseudonym).AddApiKeyAsync(new NewApiKey(keyId, hash, version, label, now, expiresAt)))
        {
            return Problems.NotFound("No user with this id exists.");
        }

        // Key ids are 96 random bits, so a bind conflict means a bug, not bad luck.
        if (!await grains.GetGrain<IApiKeyRouteGrain>(keyId).BindAsync(pseudonym))
        {
            throw new InvalidOperationException("A freshly generated API key id was already bound.");
        }

        return Created(context, $"/admin/users/{Uri.EscapeDataString(id)}/api-keys/{keyId}", new ApiKeyResponse(keyId, apiKey, label, now, expiresAt), ApiJsonContext.Default.ApiKeyResponse);
    }

    private static JsonHttpResult<T> Created<T>(HttpContext context, string location, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo)
    {
        context.Response.Headers.Location = location;
        return TypedResults.Json(value, typeInfo, statusCode: StatusCodes.Status201Created);
    }

    private static ProblemHttpResult? ValidateUserId(string? id) =>
        id is { Length: > 0 and <= MaxUserIdLength } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '@')
            ? null
            : Problems.InvalidRequest($"'id' must be 1 to {MaxUserIdLength} characters of letters, digits, '.', '_', '-' or '@'.");
}
