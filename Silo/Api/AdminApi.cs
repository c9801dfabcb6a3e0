using Bastion.Access;
using Bastion.Audit;
using Bastion.Security;
using Bastion.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>User, role and API-key administration under <c>/admin</c>; every route needs <see cref="Permission.ManageUsers"/> and is audited.</summary>
public static class AdminApi
{
    private const int MaxUserIdLength = 128;
    private const int MaxLabelLength = 100;
    private const int MaxKeyLifetimeDays = 3650;
    private const int MaxPageSize = 500;

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder routes)
    {
        var admin = routes.MapGroup("/admin").WithTags("Administration");
        admin.MapGet("/users", ListUsersAsync).RequirePermission(Permission.ManageUsers)
            .WithSummary("Lists users, a page at a time (after, limit).").Produces<UserList>().ProducesProblem(StatusCodes.Status400BadRequest);
        admin.MapPost("/users", CreateUserAsync).RequirePermission(Permission.ManageUsers).Audited("user.create").RefusedWhileFrozen()
            .WithSummary("Creates a user with roles.").Accepts<CreateUserRequest>("application/json")
            .Produces<UserResponse>(StatusCodes.Status201Created).ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapGet("/users/{id}", GetUserAsync).RequirePermission(Permission.ManageUsers)
            .WithSummary("Reads a user's roles, API keys and usage.").Produces<ProfileResponse>()
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapDelete("/users/{id}", DeleteUserAsync).RequirePermission(Permission.ManageUsers).Audited("user.delete").RefusedWhileFrozen()
            .WithSummary("Erases a user: their data key first, then their state (not the last admin).").Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPut("/users/{id}/roles", SetRolesAsync).RequirePermission(Permission.ManageUsers).Audited("user.roles").RefusedWhileFrozen()
            .WithSummary("Replaces a user's roles (not the last admin's admin role).").Accepts<RolesRequest>("application/json")
            .Produces<UserResponse>().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        admin.MapPost("/users/{id}/api-keys", CreateApiKeyAsync).RequirePermission(Permission.ManageUsers).Audited("api-key.create").RefusedWhileFrozen()
            .WithSummary("Issues an API key for a user; the key is shown only in this answer.").Accepts<CreateApiKeyRequest>("application/json")
            .Produces<ApiKeyResponse>(StatusCodes.Status201Created).ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapDelete("/users/{id}/api-keys/{keyId}", RevokeApiKeyAsync).RequirePermission(Permission.ManageUsers).Audited("api-key.revoke")
            .WithSummary("Revokes one of a user's API keys.").Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapPost("/users/{id}/suspend", (string id, IGrainFactory grains, Pseudonymizer pseudonyms) => UpdateAsync(id, grains, pseudonyms, user => user.SetSuspendedAsync(true)))
            .RequirePermission(Permission.ManageUsers).Audited("user.suspend")
            .WithSummary("Suspends a user: their open generations stop and every call is refused.").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapPost("/users/{id}/resume", (string id, IGrainFactory grains, Pseudonymizer pseudonyms) => UpdateAsync(id, grains, pseudonyms, user => user.SetSuspendedAsync(false)))
            .RequirePermission(Permission.ManageUsers).Audited("user.resume").RefusedWhileFrozen()
            .WithSummary("Lifts a user's suspension.").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapPost("/users/{id}/revoke-tokens", (string id, IGrainFactory grains, Pseudonymizer pseudonyms) => UpdateAsync(id, grains, pseudonyms, user => user.RevokeTokensAsync()))
            .RequirePermission(Permission.ManageUsers).Audited("user.revoke-tokens")
            .WithSummary("Revokes every access token issued to a user so far.").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapGet("/audit", ReadAuditAsync).RequirePermission(Permission.ManageUsers)
            .WithSummary("Reads the latest audit records (limit).").Produces<AuditList>().ProducesProblem(StatusCodes.Status400BadRequest);
        admin.MapGet("/emergency", async (EmergencySwitchboard switchboard) => Switches(await switchboard.GetAsync())).RequirePermission(Permission.ManageUsers)
            .WithSummary("Reads the emergency switches.").Produces<EmergencyBody>();
        admin.MapPut("/emergency", SetEmergencyAsync).RequirePermission(Permission.ManageUsers).Audited("emergency.set")
            .WithSummary("Sets both emergency switches: stop inference, freeze changes that grant access.").Accepts<EmergencyBody>("application/json").Produces<EmergencyBody>();
        return routes;
    }

    // Both switches are required, so that a request never turns one off by leaving it out.
    private static async Task<Results<JsonHttpResult<EmergencyBody>, ProblemHttpResult>> SetEmergencyAsync(HttpContext context, EmergencySwitchboard switchboard)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.EmergencyBody);
        if (problem is not null)
        {
            return problem;
        }

        if (request!.InferenceStopped is not { } inferenceStopped || request.ChangesFrozen is not { } changesFrozen)
        {
            return Problems.InvalidRequest("'inference_stopped' and 'changes_frozen' are both required (true or false).");
        }

        AuditFilter.AddDetail(context, "inference_stopped", inferenceStopped ? "true" : "false");
        AuditFilter.AddDetail(context, "changes_frozen", changesFrozen ? "true" : "false");
        return Switches(await switchboard.SetAsync(new EmergencySwitches(inferenceStopped, changesFrozen)));
    }

    private static JsonHttpResult<EmergencyBody> Switches(EmergencySwitches switches) =>
        TypedResults.Json(new EmergencyBody(switches.InferenceStopped, switches.ChangesFrozen), ApiJsonContext.Default.EmergencyBody);

    private static async Task<Results<JsonHttpResult<UserList>, ProblemHttpResult>> ListUsersAsync(IGrainFactory grains, string? after, int? limit)
    {
        if (limit is < 1 or > MaxPageSize)
        {
            return Problems.InvalidRequest($"'limit' must be between 1 and {MaxPageSize}.");
        }

        // The cursor is the last user id of the previous page, so it obeys the user-id rule.
        if (after is not null && !IsUserId(after))
        {
            return Problems.InvalidRequest($"'after' must be a user id: 1 to {MaxUserIdLength} characters of letters, digits, '.', '_', '-', '@' or ':'.");
        }

        var pageSize = limit ?? 100;
        var page = await grains.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).ListAsync(after, pageSize);
        var next = page.Count == pageSize ? page[^1].UserId : null;
        return TypedResults.Json(new UserList([.. page.Select(u => new UserListEntry(u.UserId, u.IsAdmin, u.CreatedAt))], next), ApiJsonContext.Default.UserList);
    }

    private static async Task<Results<JsonHttpResult<UserResponse>, ProblemHttpResult>> CreateUserAsync(
        HttpContext context, IGrainFactory grains, Pseudonymizer pseudonyms)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.CreateUserRequest);
        if (problem is not null)
        {
            return problem;
        }

        if ((ValidateUserId(request!.Id) ?? ValidateRoles(request.Roles ?? [Roles.User])) is { } invalid)
        {
            return invalid;
        }

        var id = request.Id!;
        IReadOnlyList<string> roles = [.. (request.Roles ?? [Roles.User]).Distinct(StringComparer.Ordinal)];
        var pseudonym = pseudonyms.Pseudonymize(id);
        if (!await grains.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).AddAsync(pseudonym, id, roles.Contains(Roles.Admin)))
        {
            return Problems.Conflict("A user with this id already exists.");
        }

        await grains.GetGrain<IUserGrain>(pseudonym).CreateAsync(roles);
        return Created(context, $"/admin/users/{Uri.EscapeDataString(id)}", new UserResponse(id, roles), ApiJsonContext.Default.UserResponse);
    }

    private static async Task<Results<JsonHttpResult<ProfileResponse>, ProblemHttpResult>> GetUserAsync(string id, IGrainFactory grains, Pseudonymizer pseudonyms)
    {
        if (ValidateUserId(id) is { } invalid)
        {
            return invalid;
        }

        return await grains.GetGrain<IUserGrain>(pseudonyms.Pseudonymize(id)).GetProfileAsync() is { } profile
            ? TypedResults.Json(MeApi.ToResponse(id, profile), ApiJsonContext.Default.ProfileResponse)
            : UserNotFound();
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteUserAsync(string id, Pseudonymizer pseudonyms, UserErasure erasure)
    {
        if (ValidateUserId(id) is { } invalid)
        {
            return invalid;
        }

        return await DeleteAsync(pseudonyms.Pseudonymize(id), erasure);
    }

    /// <summary>
    /// Erases a user (<see cref="UserErasure"/>): their data key first, which makes every stored copy of their state
    /// unreadable, then what is left of them. A delete that failed midway is finished by the next one.
    /// </summary>
    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string pseudonym, UserErasure erasure) =>
        await erasure.EraseAsync(pseudonym) switch
        {
            DirectoryChange.LastAdmin => LastAdmin(),
            DirectoryChange.NotFound => UserNotFound(),
            _ => TypedResults.NoContent(),
        };

    private static async Task<Results<JsonHttpResult<UserResponse>, ProblemHttpResult>> SetRolesAsync(
        string id, HttpContext context, IGrainFactory grains, Pseudonymizer pseudonyms)
    {
        var (request, problem) = await JsonBody.ReadAsync(context, ApiJsonContext.Default.RolesRequest);
        if (problem is not null)
        {
            return problem;
        }

        if ((ValidateUserId(id) ?? ValidateRoles(request!.Roles)) is { } invalid)
        {
            return invalid;
        }

        IReadOnlyList<string> roles = [.. request!.Roles!.Distinct(StringComparer.Ordinal)];
        var pseudonym = pseudonyms.Pseudonymize(id);
        switch (await grains.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).SetAdminAsync(pseudonym, roles.Contains(Roles.Admin)))
        {
            case DirectoryChange.LastAdmin:
                return LastAdmin();
            case DirectoryChange.NotFound:
                return UserNotFound();
        }

        return await grains.GetGrain<IUserGrain>(pseudonym).SetRolesAsync(roles)
            ? TypedResults.Json(new UserResponse(id, roles), ApiJsonContext.Default.UserResponse)
            : UserNotFound();
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
            return UserNotFound();
        }

        // Key ids are 96 random bits, so a bind conflict means a bug, not bad luck.
        if (!await grains.GetGrain<IApiKeyRouteGrain>(keyId).BindAsync(pseudonym))
        {
            throw new InvalidOperationException("A freshly generated API key id was already bound.");
        }

        return Created(context, $"/admin/users/{Uri.EscapeDataString(id)}/api-keys/{keyId}", new ApiKeyResponse(keyId, apiKey, label, now, expiresAt), ApiJsonContext.Default.ApiKeyResponse);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeApiKeyAsync(string id, string keyId, IGrainFactory grains, Pseudonymizer pseudonyms)
    {
        if (ValidateUserId(id) is { } invalid)
        {
            return invalid;
        }

        if (!ApiKeys.IsWellFormedKeyId(keyId))
        {
            return Problems.InvalidRequest("'keyId' must be a key id: the 24 hexadecimal digits after 'bst_' in the key.");
        }

        return await grains.GetGrain<IUserGrain>(pseudonyms.Pseudonymize(id)).RevokeApiKeyAsync(keyId)
            ? TypedResults.NoContent()
            : Problems.NotFound("No such API key for this user.");
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> UpdateAsync(
        string id, IGrainFactory grains, Pseudonymizer pseudonyms, Func<IUserGrain, Task<bool>> update)
    {
        if (ValidateUserId(id) is { } invalid)
        {
            return invalid;
        }

        return await update(grains.GetGrain<IUserGrain>(pseudonyms.Pseudonymize(id))) ? TypedResults.NoContent() : UserNotFound();
    }

    /// <summary>The most audit records one page of <c>GET /admin/audit</c> holds; the whole trail is for <c>audit export</c>.</summary>
    public const int MaxAuditPage = 1000;

    private static async Task<Results<JsonHttpResult<AuditList>, ProblemHttpResult>> ReadAuditAsync(AuditLedger ledger, int? limit, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxAuditPage)
        {
            return Problems.InvalidRequest($"'limit' must be between 1 and {MaxAuditPage}.");
        }

        var records = await ledger.ReadNewestAsync(limit ?? 100, cancellationToken);
        return TypedResults.Json(
            new AuditList([.. records.Select(r => new AuditEntry(r.Seq, r.Record.Time, r.Record.Actor, r.Record.Action, r.Record.Target, r.Record.Outcome, r.Record.Detail))]),
            ApiJsonContext.Default.AuditList);
    }


    internal static JsonHttpResult<T> Created<T>(HttpContext context, string location, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo)
    {
        context.Response.Headers.Location = location;
        return TypedResults.Json(value, typeInfo, statusCode: StatusCodes.Status201Created);
    }

    private static ProblemHttpResult UserNotFound() => Problems.NotFound("No user with this id exists.");

    private static ProblemHttpResult LastAdmin() => Problems.Conflict("This is the last admin: create or promote another admin first.");

    private static ProblemHttpResult? ValidateRoles(IReadOnlyList<string>? roles) =>
        roles is { Count: > 0 } && roles.All(RolePermissions.IsKnown)
            ? null
            : Problems.InvalidRequest($"'roles' must name one or more of: {string.Join(", ", Roles.All)}.");

    internal static ProblemHttpResult? ValidateUserId(string? id) =>
        IsUserId(id) ? null : Problems.InvalidRequest($"'id' must be 1 to {MaxUserIdLength} characters of letters, digits, '.', '_', '-', '@' or ':'.");

    private static bool IsUserId(string? id) =>
        id is { Length: > 0 and <= MaxUserIdLength } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '@' or ':');
}
