using System.Globalization;
using Bastion.Access;
using Bastion.Anomaly;
using Bastion.Audit;
using Bastion.Diagnostics;
using Bastion.Generation;
using Bastion.Limits;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Storage;

namespace Bastion.Users;

/// <summary>
/// The authority on one user: credentials, roles and usage. Every turn is short; the user's tokens
/// are generated elsewhere, so a slow generation never holds up the user's next request. It also watches the user's
/// traffic for anomalies (docs/anomaly-detection.md) and acts on them as the user's role says: observe, throttle or
/// suspend, each audited and counted.
/// </summary>
[GrainType("bastion.user")]
public sealed partial class UserGrain(
    [PersistentState("user", StorageNames.Bastion)] IPersistentState<UserState> state,
    TimeProvider time,
    IOptions<LimitOptions> limitOptions,
    IOptions<AnomalyOptions> anomalyOptions,
    IAuditTrail audit,
    BastionMetrics metrics,
    ILogger<UserGrain> logger) : Grain, IUserGrain
{
    // Per activation: it holds recent prompts' fingerprints, which are never persisted.
    private AnomalyDetector? _detector;

    // Expired API keys already recorded in the audit trail by this activation.
    private readonly HashSet<string> _expiredKeysAudited = new(StringComparer.Ordinal);

    private string Pseudonym => this.GetPrimaryKeyString();

    private AnomalyDetector Detector => _detector ??= new AnomalyDetector(anomalyOptions.Value);

    public async Task<bool> CreateAsync(IReadOnlyList<string> roles)
    {
        if (state.State.Exists)
        {
            return false;
        }

        state.State.Exists = true;
        state.State.Roles = [.. roles.Distinct(StringComparer.Ordinal)];
        await state.WriteStateAsync();
        LogUserCreated(logger, Pseudonym);
        return true;
    }

    public async Task<bool> AddApiKeyAsync(NewApiKey key)
    {
        if (!state.State.Exists)
        {
            return false;
        }

        state.State.ApiKeys[key.KeyId] = new StoredApiKey
        {
            SecretHash = key.SecretHash,
            HashKeyVersion = key.HashKeyVersion,
            Label = key.Label,
            CreatedAt = key.CreatedAt,
            ExpiresAt = key.ExpiresAt,
        };
        await state.WriteStateAsync();
        LogApiKeyAdded(logger, Pseudonym, key.KeyId);
        return true;
    }

    public async Task<bool> SetRolesAsync(IReadOnlyList<string> roles)
    {
        if (!state.State.Exists)
        {
            return false;
        }

        state.State.Roles = [.. roles.Distinct(StringComparer.Ordinal)];
        await state.WriteStateAsync();
        LogRolesChanged(logger, Pseudonym, string.Join(",", state.State.Roles));
        return true;
    }

    public async Task<bool> RevokeApiKeyAsync(string keyId)
    {
        if (!state.State.Exists || !state.State.ApiKeys.TryGetValue(keyId, out var key))
        {
            return false;
        }

        key.Revoked = true;
        await state.WriteStateAsync();
        LogApiKeyRevoked(logger, Pseudonym, keyId);
        return true;
    }

    public async Task<bool> SetSuspendedAsync(bool suspended)
    {
        if (!state.State.Exists)
        {
            return false;
        }

        state.State.Suspended = suspended;
        if (!suspended)
        {
            // Resuming is an admin's judgement that the user is fine: it lifts an anomaly throttle too.
            state.State.Anomaly.ThrottledUntil = null;
        }

        await state.WriteStateAsync();
        LogSuspension(logger, Pseudonym, suspended);
        if (suspended)
        {
            await CancelOpenGenerationsAsync();
        }

        return true;
    }

    public async Task<bool> RevokeTokensAsync()
    {
        if (!state.State.Exists)
        {
            return false;
        }

        state.State.RevocationGeneration++;
        state.State.ExternalTokensRevokedAt = time.GetUtcNow();
        await state.WriteStateAsync();
        LogTokensRevoked(logger, Pseudonym, state.State.RevocationGeneration);
        await CancelOpenGenerationsAsync();
        return true;
    }

    public async Task<IReadOnlyList<string>?> DeleteAsync()
    {
        // A row whose data key an erasure destroyed reads as no user, but the row is still there to clear.
        if (!state.State.Exists && !state.RecordExists)
        {
            return null;
        }

        IReadOnlyList<string> keyIds = [.. state.State.ApiKeys.Keys];
        var open = Admission.Open(state.State.Admission);
        await state.ClearStateAsync();
        state.State = new UserState();
        await CancelAsync(open);
        LogUserDeleted(logger, Pseudonym);
        return keyIds;
    }

    public Task<AccessDecision> AuthorizeAsync(Credential credential, Permission permission) => DecideCurrentAsync(credential, permission);

    public async Task<Submission> SubmitAsync(Credential credential, GenerationRequest request)
    {
        var generationId = Guid.NewGuid();
        var generation = GrainFactory.GetGrain<IGenerationGrain>(generationId);
        var reservedTokens = -1;
        for (var attempt = 1; ; attempt++)
        {
            var decision = await DecideCurrentAsync(credential, Permission.Infer);
            if (!decision.IsAllowed)
            {
                return await RefuseAsync(decision, null);
            }

            // The worker tokenizes and knows the model's default max_tokens, so it says what to reserve.
            if (reservedTokens < 0)
            {
                reservedTokens = await generation.PrepareAsync(Pseudonym, [.. state.State.Roles], request);
            }

            var (admitted, status) = Admission.TryAdmit(
                state.State.Admission, Limits, generationId, reservedTokens, time.GetUtcNow(), limitOptions.Value.LeaseDuration);
            if (!admitted)
            {
                LogLimited(logger, Pseudonym, status!.Kind);
                await ActAsync(Detector.Refused(state.State.Anomaly, time.GetUtcNow()));
                return await RefuseAsync(AccessDecision.Deny(DenialReason.LimitExceeded), status);
            }

            state.State.Requests++;
            try
            {
                // The grant counts only once this ETag-checked write succeeds.
                await state.WriteStateAsync();
            }
            catch (InconsistentStateException) when (attempt == 1)
            {
                // Another activation wrote first (a duplicate during failover): decide again on its state.
                await state.ReadStateAsync();
                continue;
            }

            try
            {
                await generation.StartAsync();
            }
            catch
            {
                Admission.Settle(state.State.Admission, Limits, generationId, 0, time.GetUtcNow());
                await state.WriteStateAsync();
                throw;
            }

            // After the grant: an action taken now applies from the user's next request on.
            await ActAsync([.. Detector.Admitted(state.State.Anomaly, AnomalyDetector.PromptText(request), credential.ClientNetwork, time.GetUtcNow())]);
            return new Submission(decision, generationId, status);
        }

        async Task<Submission> RefuseAsync(AccessDecision decision, LimitStatus? status)
        {
            if (reservedTokens >= 0)
            {
                await generation.AbandonAsync();
            }

            return new Submission(decision, null, status);
        }
    }

    public async Task SettleAsync(Guid generationId, TokenUsage usage)
    {
        if (!state.State.Exists)
        {
            return;
        }

        if (!Admission.Settle(state.State.Admission, Limits, generationId, usage.TotalTokens, time.GetUtcNow()))
        {
            return; // settled and counted before; this is a retry after the reply was lost
        }

        state.State.PromptTokens += usage.PromptTokens;
        state.State.CompletionTokens += usage.CompletionTokens;
        var spike = Detector.Settled(state.State.Anomaly, usage.TotalTokens, time.GetUtcNow());
        await state.WriteStateAsync();
        await ActAsync(spike);
    }

    public async Task<bool> RenewLeaseAsync(Guid generationId)
    {
        if (!state.State.Exists || !Admission.Renew(state.State.Admission, generationId, time.GetUtcNow(), limitOptions.Value.LeaseDuration))
        {
            return false;
        }

        await state.WriteStateAsync();
        return true;
    }

    public async Task<UserLimits?> SetLimitsAsync(UserLimits overrides)
    {
        if (!state.State.Exists)
        {
            return null;
        }

        state.State.LimitOverrides = (state.State.LimitOverrides ?? UserLimits.None).With(overrides);
        await state.WriteStateAsync();
        return Limits;
    }

    private UserLimits Limits => AnomalyThrottle.Apply(
        limitOptions.Value.For(state.State.Roles).With(state.State.LimitOverrides), state.State.Anomaly, time.GetUtcNow());

    public Task<UserProfile?> GetProfileAsync() => Task.FromResult(
        state.State.Exists
            ? new UserProfile(
                [.. state.State.Roles],
                [.. state.State.ApiKeys.Select(pair => new ApiKeyInfo(pair.Key, pair.Value.Label, pair.Value.CreatedAt, pair.Value.ExpiresAt, pair.Value.Revoked))],
                new TokenUsage(state.State.PromptTokens, state.State.CompletionTokens),
                state.State.Requests,
                state.State.Suspended)
            : null);

    private Task CancelOpenGenerationsAsync() => CancelAsync(Admission.Open(state.State.Admission));

    // Each generation stops at its next decode step and settles what it used, which closes it here.
    private Task CancelAsync(IReadOnlyList<Guid> generations) =>
        Task.WhenAll(generations.Select(id => GrainFactory.GetGrain<IGenerationGrain>(id).CancelAsync()));

    /// <summary>
    /// Decides on the state in memory, unless the credential names a key this activation has never
    /// seen: then it re-reads once, because while silos join or leave a duplicate activation can hold
    /// state older than a key issued through the other one. Invented key ids never get here (the edge
    /// checks their MAC), so the extra read costs nothing an attacker can repeat cheaply.
    /// </summary>
    private async Task<AccessDecision> DecideCurrentAsync(Credential credential, Permission permission)
    {
        if (credential.Kind is not (CredentialKind.ExternalToken or CredentialKind.ServiceToken) && !state.State.ApiKeys.ContainsKey(credential.KeyId))
        {
            await state.ReadStateAsync();
        }

        var decision = Decide(credential, permission);
        if (decision.Reason == DenialReason.Forbidden)
        {
            await ActAsync(Detector.Refused(state.State.Anomaly, time.GetUtcNow()));
        }
        else if (decision.Reason == DenialReason.NotAuthenticated && CredentialVerifier.IsWrongSecret(state.State, credential, time.GetUtcNow()))
        {
            await ActAsync(Detector.AuthenticationFailed(state.State.Anomaly, time.GetUtcNow()));
        }
        else if (decision.Reason == DenialReason.NotAuthenticated && CredentialVerifier.IsExpiredKey(state.State, credential, time.GetUtcNow())
            && _expiredKeysAudited.Add(credential.KeyId))
        {
            // Once per key per activation: a forgotten job that keeps presenting an expired key is one record, not a flood.
            await audit.RecordAsync(new AuditRecord(
                time.GetUtcNow(), "api-key.expired", null, Pseudonym, "refused", new Dictionary<string, string> { ["key_id"] = credential.KeyId }));
        }

        return decision;
    }

    private Task ActAsync(AnomalyHit? hit) => hit is { } fired ? ActAsync([fired]) : Task.CompletedTask;

    /// <summary>
    /// Takes the action the user's role prescribes for each signal that fired, then audits and counts it. The action
    /// stands even when the audit trail is unavailable (logged as an error): an attack must not go on because the
    /// trail is down.
    /// </summary>
    private async Task ActAsync(IReadOnlyList<AnomalyHit> hits)
    {
        if (hits.Count == 0)
        {
            return;
        }

        var now = time.GetUtcNow();
        var options = anomalyOptions.Value;
        var actions = hits.Select(hit => (Hit: hit, Action: options.ActionFor(state.State.Roles, hit.Signal))).ToList();
        var suspend = actions.Any(a => a.Action == AnomalyAction.Suspend) && !state.State.Suspended;
        if (actions.Any(a => a.Action != AnomalyAction.Observe))
        {
            for (var attempt = 1; ; attempt++)
            {
                if (actions.Any(a => a.Action == AnomalyAction.Throttle))
                {
                    AnomalyThrottle.Start(state.State.Anomaly, options.Throttle.Factor, now + options.Throttle.Duration);
                }

                state.State.Suspended |= suspend;
                try
                {
                    await state.WriteStateAsync();
                    break;
                }
                catch (InconsistentStateException) when (attempt == 1)
                {
                    await state.ReadStateAsync();
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    // The action holds in this activation regardless; the request that fired it has been decided already.
                    LogAnomalyNotPersisted(logger, exception, Pseudonym);
                    break;
                }
            }

            if (suspend)
            {
                await CancelOpenGenerationsAsync();
            }
        }

        foreach (var (hit, action) in actions)
        {
            var actionName = action.ToString().ToLowerInvariant();
            metrics.RecordAnomalyAction(hit.Signal.Name(), actionName);
            LogAnomaly(logger, Pseudonym, hit.Signal.Name(), actionName, hit.Value, hit.Threshold);
            try
            {
                await audit.RecordAsync(new AuditRecord(now, "anomaly." + actionName, "system", Pseudonym, "ok", new Dictionary<string, string>
                {
                    ["signal"] = hit.Signal.Name(),
                    ["value"] = hit.Value.ToString(CultureInfo.InvariantCulture),
                    ["threshold"] = hit.Threshold.ToString(CultureInfo.InvariantCulture),
                }));
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogAnomalyNotAudited(logger, exception, Pseudonym, hit.Signal.Name(), actionName);
            }
        }
    }

    private AccessDecision Decide(Credential credential, Permission permission)
    {
        var reason = CredentialVerifier.Verify(state.State, credential, time.GetUtcNow());
        if (reason == DenialReason.None && !RolePermissions.Allows(state.State.Roles, permission))
        {
            reason = DenialReason.Forbidden;
        }

        if (reason != DenialReason.None)
        {
            LogDenied(logger, Pseudonym, permission, reason);
            return AccessDecision.Deny(reason);
        }

        return new AccessDecision(DenialReason.None, state.State.RevocationGeneration);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} created")]
    private static partial void LogUserCreated(ILogger logger, string pseudonym);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} was issued API key {KeyId}")]
    private static partial void LogApiKeyAdded(ILogger logger, string pseudonym, string keyId);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} roles set to {Roles}")]
    private static partial void LogRolesChanged(ILogger logger, string pseudonym, string roles);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} API key {KeyId} revoked")]
    private static partial void LogApiKeyRevoked(ILogger logger, string pseudonym, string keyId);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} suspended: {Suspended}")]
    private static partial void LogSuspension(ILogger logger, string pseudonym, bool suspended);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} tokens revoked (generation {Generation})")]
    private static partial void LogTokensRevoked(ILogger logger, string pseudonym, long generation);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} deleted")]
    private static partial void LogUserDeleted(ILogger logger, string pseudonym);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} refused by the {Limit} limit")]
    private static partial void LogLimited(ILogger logger, string pseudonym, LimitKind limit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "User {Pseudonym} anomaly {Signal} ({Value} against a threshold of {Threshold}): {Action}")]
    private static partial void LogAnomaly(ILogger logger, string pseudonym, string signal, string action, double value, double threshold);

    [LoggerMessage(Level = LogLevel.Error, Message = "User {Pseudonym} anomaly action could not be persisted; it holds in this activation only")]
    private static partial void LogAnomalyNotPersisted(ILogger logger, Exception exception, string pseudonym);

    [LoggerMessage(Level = LogLevel.Error, Message = "User {Pseudonym} anomaly {Signal} was acted on ({Action}) but could not be audited")]
    private static partial void LogAnomalyNotAudited(ILogger logger, Exception exception, string pseudonym, string signal, string action);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} denied {Permission}: {Reason}")]
    private static partial void LogDenied(ILogger logger, string pseudonym, Permission permission, DenialReason reason);
}
