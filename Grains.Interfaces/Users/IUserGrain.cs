using Bastion.Access;
using Bastion.Generation;
using Bastion.Limits;

namespace Bastion.Users;

/// <summary>
/// One user, keyed by their pseudonym (a keyed hash of the user id; the id itself is never a key).
/// The authority on who the user is, what they may do, and what they have used.
/// </summary>
[Alias("bastion.user")]
public interface IUserGrain : IGrainWithStringKey
{
    /// <summary>Creates the user with the given roles. Returns false when the user already exists.</summary>
    [Alias("create")]
    Task<bool> CreateAsync(IReadOnlyList<string> roles);

    /// <summary>Stores a new API key (only the keyed hash of its secret). Returns false when the user does not exist.</summary>
    [Alias("add-api-key")]
    Task<bool> AddApiKeyAsync(NewApiKey key);

    /// <summary>Replaces the user's roles. Returns false when the user does not exist.</summary>
    [Alias("set-roles")]
    Task<bool> SetRolesAsync(IReadOnlyList<string> roles);

    /// <summary>Revokes one API key (and every access token exchanged for it). Returns false when there is no such key.</summary>
    [Alias("revoke-api-key")]
    Task<bool> RevokeApiKeyAsync(string keyId);

    /// <summary>Suspends or resumes the user; suspending also cancels their running generations. False when the user does not exist.</summary>
    [Alias("set-suspended")]
    Task<bool> SetSuspendedAsync(bool suspended);

    /// <summary>Invalidates every access token issued so far and cancels running generations. False when the user does not exist.</summary>
    [Alias("revoke-tokens")]
    Task<bool> RevokeTokensAsync();

    /// <summary>Deletes the user and their state, cancelling running generations. Returns their API key ids, or null when there was no user.</summary>
    [Alias("delete")]
    Task<IReadOnlyList<string>?> DeleteAsync();

    /// <summary>Overrides some of the role's limits for this user (unset fields keep earlier overrides); returns the effective limits, or null when the user does not exist.</summary>
    [Alias("set-limits")]
    Task<UserLimits?> SetLimitsAsync(UserLimits overrides);

    /// <summary>Judges a credential and whether the user holds <paramref name="permission"/>.</summary>
    [Alias("authorize")]
    Task<AccessDecision> AuthorizeAsync(Credential credential, Permission permission);

    /// <summary>
    /// Admits a completion request (credential, permission) and starts its generation on a worker,
    /// returning the generation to read the result from. Denied requests return no generation.
    /// </summary>
    [Alias("submit")]
    Task<Submission> SubmitAsync(Credential credential, GenerationRequest request);

    /// <summary>Records the real usage of a finished generation.</summary>
    [Alias("settle")]
    Task SettleAsync(Guid generationId, TokenUsage usage);

    /// <summary>
    /// Renews the concurrency lease of a generation that is still running, for another lease duration. False when the
    /// generation is no longer open (settled, or its lease lapsed): it must then stop, since its slot is no longer held.
    /// </summary>
    [Alias("renew-lease")]
    Task<bool> RenewLeaseAsync(Guid generationId);

    /// <summary>The user's profile and accumulated usage.</summary>
    [Alias("get-profile")]
    Task<UserProfile?> GetProfileAsync();
}
