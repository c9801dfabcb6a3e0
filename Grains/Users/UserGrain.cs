using System.Security.Cryptography;
using Bastion.Access;
using Bastion.Generation;
using Microsoft.Extensions.Logging;

namespace Bastion.Users;

/// <summary>
/// The authority on one user: credentials, roles and usage. Every turn is short; the user's tokens
/// are generated elsewhere, so a slow generation never holds up the user's next request.
/// </summary>
[GrainType("bastion.user")]
public sealed partial class UserGrain(
    [PersistentState("user", StorageNames.Bastion)] IPersistentState<UserState> state,
    TimeProvider time,
    ILogger<UserGrain> logger) : Grain, IUserGrain
{
    private string Pseudonym => this.GetPrimaryKeyString();

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

    public Task<AccessDecision> AuthorizeAsync(Credential credential, Permission permission) =>
        Task.FromResult(Decide(credential, permission));

    public async Task<Submission> SubmitAsync(Credential credential, GenerationRequest request)
    {
        var decision = Decide(credential, Permission.Infer);
        if (!decision.IsAllowed)
        {
            return new Submission(decision, null);
        }

        var generationId = Guid.NewGuid();
        await GrainFactory.GetGrain<IGenerationGrain>(generationId).StartAsync(Pseudonym, request);
        state.State.Requests++;
        await state.WriteStateAsync();
        return new Submission(decision, generationId);
    }

    public async Task SettleAsync(Guid generationId, TokenUsage usage)
    {
        state.State.PromptTokens += usage.PromptTokens;
        state.State.CompletionTokens += usage.CompletionTokens;
        await state.WriteStateAsync();
    }

    public Task<UserProfile?> GetProfileAsync() => Task.FromResult(
        state.State.Exists
            ? new UserProfile([.. state.State.Roles], [.. state.State.ApiKeys.Keys], new TokenUsage(state.State.PromptTokens, state.State.CompletionTokens), state.State.Requests)
            : null);

    private AccessDecision Decide(Credential credential, Permission permission)
    {
        var reason = Verify(state.State, credential, time.GetUtcNow());
        if (reason == DenialReason.None && !RolePermissions.Allows(state.State.Roles, permission))
        {
            reason = DenialReason.Forbidden;
        }

        if (reason != DenialReason.None)
        {
            LogDenied(logger, Pseudonym, permission, reason);
            return AccessDecision.Deny(reason);
        }

        return new AccessDecision(DenialReason.None, [.. state.State.Roles], state.State.RevocationGeneration);
    }

    private static DenialReason Verify(UserState user, Credential credential, DateTimeOffset now)
    {
        if (!user.Exists || !user.ApiKeys.TryGetValue(credential.KeyId, out var key) || key.Revoked
            || (key.ExpiresAt is { } expiry && expiry <= now))
        {
            return DenialReason.NotAuthenticated;
        }

        var credentialMatches = credential.Kind switch
        {
            CredentialKind.ApiKey => credential.HashKeyVersion == key.HashKeyVersion
                && CryptographicOperations.FixedTimeEquals(credential.SecretHash, key.SecretHash),
            CredentialKind.AccessToken => credential.RevocationGeneration == user.RevocationGeneration,
            _ => false,
        };
        if (!credentialMatches)
        {
            return DenialReason.NotAuthenticated;
        }

        return user.Suspended ? DenialReason.Suspended : DenialReason.None;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} created")]
    private static partial void LogUserCreated(ILogger logger, string pseudonym);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} was issued API key {KeyId}")]
    private static partial void LogApiKeyAdded(ILogger logger, string pseudonym, string keyId);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} denied {Permission}: {Reason}")]
    private static partial void LogDenied(ILogger logger, string pseudonym, Permission permission, DenialReason reason);
}
