using Bastion.Generation;
using Bastion.Limits;
using Bastion.Users;

namespace Bastion.Cluster;

/// <summary>
/// The only grain a backend service may call (through the client library). Each call carries a service
/// token in <c>RequestContext</c> (<see cref="ServiceCallContext.ServiceTokenKey"/>); the gateway checks
/// the service's permissions in its user grain exactly as the HTTP routes check a caller's, and does the
/// work with silo credentials. Refusals are <see cref="ServiceRefusedException"/>.
/// </summary>
/// <remarks>
/// The key is always 0; the grain is a reentrant stateless worker, so any gateway silo serves it locally.
/// </remarks>
[Alias("bastion.service-gateway")]
public interface IServiceGateway : IGrainWithIntegerKey
{
    /// <summary>
    /// Admits a completion for the service itself (<paramref name="onBehalfOf"/> null; needs <c>infer</c>) or for
    /// the user it names (needs <c>act on behalf of users</c>, and the token's <c>act</c> must name that user;
    /// the user's own roles, limits and quotas apply). Returns the generation to read with <see cref="ReadAsync"/>.
    /// </summary>
    [Alias("start-completion")]
    Task<Guid> StartCompletionAsync(GenerationRequest request, string? onBehalfOf);

    /// <summary>
    /// Waits for text pieces of a generation from <paramref name="fromIndex"/> on, returning up to <paramref name="max"/>
    /// (the generation's bounded buffer, as the HTTP streaming path reads it). Safe to repeat. Only the service that
    /// started the generation, with a token for the same user (itself, or the same <c>act</c>), may read it, and only
    /// while that user's grain still admits the credential with <c>infer</c>: another caller, or an id that names no
    /// generation, is refused with <see cref="ServiceRefusal.NotFound"/>; a suspended user with
    /// <see cref="ServiceRefusal.Suspended"/>; a revoked token with <see cref="ServiceRefusal.NotAuthenticated"/>.
    /// </summary>
    [Alias("read")]
    Task<GenerationChunk> ReadAsync(Guid generationId, int fromIndex, int max, CancellationToken cancellationToken = default);

    /// <summary>Stops a generation at its next decode step (a reader that gave up). Checked and refused exactly as <see cref="ReadAsync"/>.</summary>
    [Alias("cancel")]
    Task CancelAsync(Guid generationId);

    /// <summary>A user's profile and usage (needs <c>manage users</c>); null when there is no such user.</summary>
    [Alias("get-user")]
    Task<UserProfile?> GetUserAsync(string userId);

    /// <summary>Creates a user (needs <c>manage users</c>). A repeat with the same <paramref name="idempotencyKey"/> returns the first answer.</summary>
    [Alias("create-user")]
    Task CreateUserAsync(string userId, IReadOnlyList<string> roles, string idempotencyKey);

    /// <summary>Issues an API key (needs <c>manage users</c>). A repeat with the same <paramref name="idempotencyKey"/> returns the same key.</summary>
    [Alias("issue-api-key")]
    Task<IssuedApiKey> IssueApiKeyAsync(string userId, string label, int? expiresInDays, string idempotencyKey);

    /// <summary>Revokes an API key and the tokens exchanged for it (needs <c>manage users</c>).</summary>
    [Alias("revoke-api-key")]
    Task RevokeApiKeyAsync(string userId, string keyId);

    /// <summary>Replaces a user's roles (needs <c>manage users</c>); the last admin cannot be demoted.</summary>
    [Alias("set-roles")]
    Task SetRolesAsync(string userId, IReadOnlyList<string> roles);

    /// <summary>Overrides some of a user's limits (needs <c>manage users</c>); returns the effective limits.</summary>
    [Alias("set-limits")]
    Task<UserLimits> SetLimitsAsync(string userId, UserLimits overrides);

    /// <summary>Suspends or resumes a user (needs <c>manage users</c>); suspending cancels their running generations.</summary>
    [Alias("set-suspended")]
    Task SetSuspendedAsync(string userId, bool suspended);

    /// <summary>Invalidates every token issued to a user so far (needs <c>manage users</c>). A repeat with the same <paramref name="idempotencyKey"/> does nothing more.</summary>
    [Alias("revoke-tokens")]
    Task RevokeTokensAsync(string userId, string idempotencyKey);

    /// <summary>The worker silos' reported load (needs <c>read metrics</c>).</summary>
    [Alias("cluster-load")]
    Task<IReadOnlyList<WorkerLoad>> GetClusterLoadAsync();

    /// <summary>Every KEK version the key provider has or a data key names, with the live data keys it wraps (needs <c>manage keys</c>).</summary>
    [Alias("list-keks")]
    Task<IReadOnlyList<KekVersionInfo>> ListKeksAsync();

    /// <summary>
    /// Starts re-wrapping every data key on an older KEK version with the current one, in the background on the answering
    /// silo (needs <c>manage keys</c>; audited as <c>keys.rewrap</c>). Safe to repeat: a run already going is reported with
    /// <see cref="KekRewrapStart.Started"/> false, and a second run finds nothing to move.
    /// </summary>
    [Alias("start-kek-rewrap")]
    Task<KekRewrapStart> StartKekRewrapAsync();

    /// <summary>The re-wrap progress, as <c>GET /admin/keys/rewrap</c> reports it (needs <c>manage keys</c>).</summary>
    [Alias("kek-rewrap-status")]
    Task<KekRewrapStatus> GetKekRewrapStatusAsync();

    /// <summary>
    /// Retires a KEK version unless it is current, unknown or still wraps a live data key (needs <c>manage keys</c>;
    /// audited as <c>keys.retire-kek</c>). Every outcome is a result, not a refusal. Safe to repeat: a repeat of a
    /// retirement that went through answers <see cref="KekRetireResult.NotFound"/> (already retired).
    /// </summary>
    [Alias("retire-kek")]
    Task<KekRetirement> RetireKekAsync(int version);
}
