using System.Globalization;
using Bastion.Access;
using Bastion.Audit;
using Bastion.Generation;
using Bastion.Limits;
using Bastion.Security;
using Bastion.Storage;
using Bastion.Users;
using Orleans.Concurrency;

namespace Bastion.Cluster;

/// <summary>
/// The facade services reach through the client library (<see cref="IServiceGateway"/>). The call filter has
/// already verified the service token; here the service's own user grain decides, per call, whether its roles grant
/// the permission — exactly as for an HTTP caller — and a user it acts for is judged by that user's grain.
/// Stateless, so every gateway silo serves it locally and many calls interleave.
/// </summary>
[GrainType(GrainTypeName), StatelessWorker, Reentrant]
public sealed partial class ServiceGatewayGrain(
    ServiceTokens tokens,
    Pseudonymizer pseudonyms,
    KeyRotation rotation,
    RewrapJob rewrap,
    TimeProvider time,
    IAuditTrail audit,
    EmergencySwitchboard emergency,
    ILogger<ServiceGatewayGrain> logger) : Grain, IServiceGateway
{
    private const string FrozenMessage = "An operator has frozen administrative changes that grant access; containment and reads still work.";

    /// <summary>The actions that create or widen access: refused while changes are frozen.</summary>
    private static readonly HashSet<string> GrantingActions = new(StringComparer.Ordinal) { "user.create", "api-key.create", "user.roles", "user.limits", "user.resume" };

    /// <summary>The facade's grain type.</summary>
    public const string GrainTypeName = "bastion.service-gateway";

    private const int MaxUserIdLength = 128;
    private const int MaxLabelLength = 100;
    private const int MaxKeyLifetimeDays = 3650;
    private const int MaxIdempotencyKeyLength = 128;
    private const int MaxPiecesPerRead = 256;

    public async Task<Guid> StartCompletionAsync(GenerationRequest request, string? onBehalfOf)
    {
        var caller = await CallerAsync();
        var credential = CredentialOf(caller);
        if (!string.Equals(caller.ActingFor, onBehalfOf, StringComparison.Ordinal))
        {
            throw new ServiceRefusedException(ServiceRefusal.NotAuthenticated, "The service token's 'act' does not name the user the call acts for.");
        }

        var owner = Pseudonym(caller.Service);
        if (onBehalfOf is not null)
        {
            ValidateUserId(onBehalfOf);
            Throw(await GrainFactory.GetGrain<IUserGrain>(owner).AuthorizeAsync(credential, Permission.ActOnBehalfOfUsers), null);
            owner = Pseudonym(onBehalfOf);
        }

        var submission = await GrainFactory.GetGrain<IUserGrain>(owner).SubmitAsync(credential, request);
        Throw(submission.Decision, submission.Limit);
        var generationId = submission.GenerationId!.Value;

        // Bound before the id leaves this silo: from here on only this service, for this same user, reads or cancels it.
        await GrainFactory.GetGrain<IGenerationGrain>(generationId).BindServiceAsync(Pseudonym(caller.Service));
        return generationId;
    }

    public async Task<GenerationChunk> ReadAsync(Guid generationId, int fromIndex, int max, CancellationToken cancellationToken = default)
    {
        var owner = await OwnerOfCallAsync();
        if (fromIndex < 0 || max is < 1 or > MaxPiecesPerRead)
        {
            throw new ServiceRefusedException(ServiceRefusal.InvalidRequest, $"'fromIndex' must be at least 0 and 'max' between 1 and {MaxPiecesPerRead}.");
        }

        return await GrainFactory.GetGrain<IGenerationGrain>(generationId).ReadOwnedAsync(owner, fromIndex, max, cancellationToken)
            ?? throw NoSuchGeneration();
    }

    public async Task CancelAsync(Guid generationId)
    {
        var owner = await OwnerOfCallAsync();
        if (!await GrainFactory.GetGrain<IGenerationGrain>(generationId).CancelOwnedAsync(owner))
        {
            throw NoSuchGeneration();
        }
    }

    public async Task<UserProfile?> GetUserAsync(string userId)
    {
        await AuthorizeAsync(Permission.ManageUsers);
        ValidateUserId(userId);
        return await GrainFactory.GetGrain<IUserGrain>(Pseudonym(userId)).GetProfileAsync();
    }

    public async Task CreateUserAsync(string userId, IReadOnlyList<string> roles, string idempotencyKey)
    {
        ValidateUserId(userId);
        ValidateRoles(roles);
        await RunOnceAsync("user.create", idempotencyKey, new ServiceOperation(ServiceOperationKind.CreateUser, userId, [.. roles.Distinct(StringComparer.Ordinal)], "", null));
    }

    public async Task<IssuedApiKey> IssueApiKeyAsync(string userId, string label, int? expiresInDays, string idempotencyKey)
    {
        ValidateUserId(userId);
        if (label.Length > MaxLabelLength || expiresInDays is < 1 or > MaxKeyLifetimeDays)
        {
            throw new ServiceRefusedException(ServiceRefusal.InvalidRequest, $"'label' must be at most {MaxLabelLength} characters and 'expiresInDays' between 1 and {MaxKeyLifetimeDays}.");
        }

        return (await RunOnceAsync("api-key.create", idempotencyKey, new ServiceOperation(ServiceOperationKind.IssueApiKey, userId, [], label, expiresInDays))).Key!;
    }

    public Task RevokeTokensAsync(string userId, string idempotencyKey)
    {
        ValidateUserId(userId);
        return RunOnceAsync("user.revoke-tokens", idempotencyKey, new ServiceOperation(ServiceOperationKind.RevokeTokens, userId, [], "", null));
    }

    public Task RevokeApiKeyAsync(string userId, string keyId) =>
        ChangeAsync("api-key.revoke", userId, async user => await user.RevokeApiKeyAsync(keyId) ? null : "No such API key for this user.");

    public Task SetSuspendedAsync(string userId, bool suspended) =>
        ChangeAsync(suspended ? "user.suspend" : "user.resume", userId, async user => await user.SetSuspendedAsync(suspended) ? null : "No user with this id exists.");

    public async Task SetRolesAsync(string userId, IReadOnlyList<string> roles)
    {
        ValidateRoles(roles);
        IReadOnlyList<string> distinct = [.. roles.Distinct(StringComparer.Ordinal)];
        await ChangeAsync("user.roles", userId, async user =>
        {
            switch (await GrainFactory.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).SetAdminAsync(Pseudonym(userId), distinct.Contains(Roles.Admin)))
            {
                case DirectoryChange.LastAdmin:
                    throw new ServiceRefusedException(ServiceRefusal.Conflict, "This is the last admin: create or promote another admin first.");
                case DirectoryChange.NotFound:
                    return "No user with this id exists.";
            }

            return await user.SetRolesAsync(distinct) ? null : "No user with this id exists.";
        });
    }

    public async Task<UserLimits> SetLimitsAsync(string userId, UserLimits overrides)
    {
        UserLimits? effective = null;
        await ChangeAsync("user.limits", userId, async user =>
        {
            effective = await user.SetLimitsAsync(overrides);
            return effective is null ? "No user with this id exists." : null;
        });
        return effective!;
    }

    public async Task<IReadOnlyList<WorkerLoad>> GetClusterLoadAsync()
    {
        await AuthorizeAsync(Permission.ReadMetrics);
        return await GrainFactory.GetGrain<IWorkerLoadGrain>(IWorkerLoadGrain.Key).ReadAsync();
    }

    public async Task<IReadOnlyList<KekVersionInfo>> ListKeksAsync()
    {
        await AuthorizeAsync(Permission.ManageKeys);
        return await rotation.ListAsync(CancellationToken.None);
    }

    // Audited like POST /admin/keys/rewrap (202 started, 409 already running). Repeating it is harmless: a run already
    // going is reported, and a run after a finished one finds nothing to move, so it needs no idempotency key.
    public async Task<KekRewrapStart> StartKekRewrapAsync()
    {
        var caller = await AuthorizeAsync(Permission.ManageKeys);
        var started = rewrap.TryStart();
        await AuditAsync(caller, "keys.rewrap", null, started ? 202 : 409);
        return new KekRewrapStart(started, await rotation.RewrapStatusAsync(rewrap.Progress, CancellationToken.None));
    }

    public async Task<KekRewrapStatus> GetKekRewrapStatusAsync()
    {
        await AuthorizeAsync(Permission.ManageKeys);
        return await rotation.RewrapStatusAsync(rewrap.Progress, CancellationToken.None);
    }

    // Audited like POST /admin/keys/kek/{version}/retire (204, 409, 404). Naturally idempotent: the version ends up
    // retired (or refused for the same reason), and a repeat of one that went through answers NotFound (already retired).
    public async Task<KekRetirement> RetireKekAsync(int version)
    {
        var caller = await AuthorizeAsync(Permission.ManageKeys);
        if (version < 1)
        {
            await AuditAsync(caller, "keys.retire-kek", null, 400);
            throw new ServiceRefusedException(ServiceRefusal.InvalidRequest, "'version' must be a positive KEK version number.");
        }

        var retirement = await rotation.RetireAsync(version, CancellationToken.None);
        await AuditAsync(caller, "keys.retire-kek", null, retirement.Result switch
        {
            KekRetireResult.Retired => 204,
            KekRetireResult.NotFound => 404,
            _ => 409,
        });
        return retirement;
    }

    private async Task<ServiceOperationOutcome> RunOnceAsync(string action, string idempotencyKey, ServiceOperation operation)
    {
        if (idempotencyKey is not { Length: > 0 and <= MaxIdempotencyKeyLength } || !idempotencyKey.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ServiceRefusedException(ServiceRefusal.InvalidRequest, $"'idempotencyKey' must be 1 to {MaxIdempotencyKeyLength} letters, digits, '-', '_' or '.'.");
        }

        var caller = await AuthorizeAsync(Permission.ManageUsers);
        if (await IsFrozenAsync(action))
        {
            await AuditAsync(caller, action, operation.UserId, ServiceRefusal.Conflict);
            throw new ServiceRefusedException(ServiceRefusal.Conflict, FrozenMessage);
        }

        var outcome = await GrainFactory.GetGrain<IServiceOperationGrain>($"{Pseudonym(caller.Service)}/{idempotencyKey}").RunAsync(operation);
        await AuditAsync(caller, action, operation.UserId, outcome.Refusal);
        return outcome.Refusal is { } refusal ? throw new ServiceRefusedException(refusal, outcome.Message!) : outcome;
    }

    // The same changes the HTTP admin routes refuse while the emergency switch freezes them (RefusedWhileFrozen).
    private async Task<bool> IsFrozenAsync(string action) => GrantingActions.Contains(action) && (await emergency.GetAsync()).ChangesFrozen;

    private async Task ChangeAsync(string action, string userId, Func<IUserGrain, Task<string?>> change)
    {
        ValidateUserId(userId);
        var caller = await AuthorizeAsync(Permission.ManageUsers);
        ServiceRefusal? refusal = null;
        try
        {
            if (await IsFrozenAsync(action))
            {
                throw new ServiceRefusedException(ServiceRefusal.Conflict, FrozenMessage);
            }

            if (await change(GrainFactory.GetGrain<IUserGrain>(Pseudonym(userId))) is { } notFound)
            {
                refusal = ServiceRefusal.NotFound;
                throw new ServiceRefusedException(ServiceRefusal.NotFound, notFound);
            }
        }
        catch (ServiceRefusedException exception)
        {
            refusal = exception.Reason;
            throw;
        }
        finally
        {
            await AuditAsync(caller, action, userId, refusal);
        }
    }

    private Task AuditAsync(ServiceCaller caller, string action, string userId, ServiceRefusal? refusal) =>
        AuditAsync(caller, action, Pseudonym(userId), refusal switch
        {
            null => 200,
            ServiceRefusal.NotFound => 404,
            ServiceRefusal.Conflict => 409,
            _ => 400,
        });

    private async Task AuditAsync(ServiceCaller caller, string action, string? target, int status)
    {
        var actor = Pseudonym(caller.Service);
        LogAudit(logger, actor, action, target, status);
        await audit.RecordAsync(new AuditRecord(time.GetUtcNow(), action, actor, target, status.ToString(CultureInfo.InvariantCulture)));
    }

    private async Task<ServiceCaller> AuthorizeAsync(Permission permission)
    {
        var caller = await CallerAsync();
        if (caller.ActingFor is not null)
        {
            // A token minted to act for one user is not a credential for the service's own admin work.
            throw new ServiceRefusedException(ServiceRefusal.NotAuthenticated, "A token that acts for a user cannot be used for this call.");
        }

        Throw(await GrainFactory.GetGrain<IUserGrain>(Pseudonym(caller.Service)).AuthorizeAsync(CredentialOf(caller), permission), null);
        return caller;
    }

    /// <summary>
    /// Who this call reads or cancels a generation as: the user its token names (the service itself, or the user in
    /// <c>act</c>) and the service. That user's grain judges the credential now, as <see cref="StartCompletionAsync"/>
    /// did, so a suspension, a revoke-tokens or a lost <c>infer</c> stops a reader at its very next read.
    /// </summary>
    private async Task<GenerationOwner> OwnerOfCallAsync()
    {
        var caller = await CallerAsync();
        var credential = CredentialOf(caller);
        var service = Pseudonym(caller.Service);
        var user = service;
        if (caller.ActingFor is { } actingFor)
        {
            ValidateUserId(actingFor);
            Throw(await GrainFactory.GetGrain<IUserGrain>(service).AuthorizeAsync(credential, Permission.ActOnBehalfOfUsers), null);
            user = Pseudonym(actingFor);
        }

        Throw(await GrainFactory.GetGrain<IUserGrain>(user).AuthorizeAsync(credential, Permission.Infer), null);
        return new GenerationOwner(user, service);
    }

    // Another's generation and an id that names none answer alike, so a refusal says nothing about what exists.
    private static ServiceRefusedException NoSuchGeneration() =>
        new(ServiceRefusal.NotFound, "No generation with this id was started by this service for this user.");

    // The filter let the call in only with a valid token; reading it again here is a cache hit.
    private async Task<ServiceCaller> CallerAsync() =>
        await tokens.ValidateAsync(RequestContext.Get(ServiceCallContext.ServiceTokenKey) as string)
        ?? throw new ServiceRefusedException(ServiceRefusal.NotAuthenticated, "The call carries no valid service token.");

    private static Credential CredentialOf(ServiceCaller caller) => new(CredentialKind.ServiceToken, caller.Service, [], 0, caller.IssuedAt);

    private string Pseudonym(string userId) => pseudonyms.Pseudonymize(userId);

    private static void Throw(AccessDecision decision, LimitStatus? limit)
    {
        switch (decision.Reason)
        {
            case DenialReason.None:
                return;
            case DenialReason.Suspended:
                throw new ServiceRefusedException(ServiceRefusal.Suspended, "The account is suspended.");
            case DenialReason.Forbidden:
                throw new ServiceRefusedException(ServiceRefusal.Forbidden, "No role of the caller grants this.");
            case DenialReason.LimitExceeded:
                throw new ServiceRefusedException(ServiceRefusal.LimitExceeded,
                    limit is { RetryAfter: var retry } ? $"The {limit.Kind} limit is exhausted; retry after {Math.Ceiling(retry.TotalSeconds)} s." : "A limit is exhausted.");
            default:
                throw new ServiceRefusedException(ServiceRefusal.NotAuthenticated, "The caller is not authenticated.");
        }
    }

    private static void ValidateUserId(string? id)
    {
        // The same rule as the HTTP admin routes (AdminApi.ValidateUserId).
        if (id is not { Length: > 0 and <= MaxUserIdLength } || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '@' or ':'))
        {
            throw new ServiceRefusedException(ServiceRefusal.InvalidRequest, $"A user id must be 1 to {MaxUserIdLength} characters of letters, digits, '.', '_', '-', '@' or ':'.");
        }
    }

    private static void ValidateRoles(IReadOnlyList<string>? roles)
    {
        if (roles is not { Count: > 0 } || !roles.All(RolePermissions.IsKnown))
        {
            throw new ServiceRefusedException(ServiceRefusal.InvalidRequest, $"'roles' must name one or more of: {string.Join(", ", Roles.All)}.");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "AUDIT {Actor} {Action} {Target}: {Status}")]
    private static partial void LogAudit(ILogger logger, string actor, string action, string? target, int status);
}
