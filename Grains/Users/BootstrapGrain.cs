using Bastion.Access;
using Bastion.Audit;
using Microsoft.Extensions.Logging;

namespace Bastion.Users;

/// <summary>
/// Creates the first admin once per service. A grain activation is unique in the cluster and its
/// write is ETag-checked, so silos starting together cannot both create one.
/// </summary>
[GrainType("bastion.bootstrap")]
public sealed partial class BootstrapGrain(
    [PersistentState("bootstrap", StorageNames.Bastion)] IPersistentState<BootstrapState> state,
    TimeProvider time,
    IAuditTrail audit,
    ILogger<BootstrapGrain> logger) : Grain, IBootstrapGrain
{
    /// <summary>The audit trail's actor for the bootstrap: no user did it, the service did.</summary>
    private const string AuditActor = "bootstrap";

    /// <summary>The audit trail's action for the bootstrap admin's creation (with their first API key).</summary>
    private const string AuditAction = "admin.bootstrap";

    public async Task<bool> EnsureAdminAsync(string adminUserId, string adminPseudonym, NewApiKey key)
    {
        if (state.State.Completed)
        {
            return false;
        }

        await GrainFactory.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).AddAsync(adminPseudonym, adminUserId, isAdmin: true);
        var admin = GrainFactory.GetGrain<IUserGrain>(adminPseudonym);
        await admin.CreateAsync([Roles.Admin]);
        await admin.AddApiKeyAsync(key);
        await GrainFactory.GetGrain<IApiKeyRouteGrain>(key.KeyId).BindAsync(adminPseudonym);

        // Before the state write: an activation that loses the write race may leave a second record,
        // but a bootstrap that completed is never missing from the trail.
        await audit.RecordAsync(new AuditRecord(time.GetUtcNow(), AuditAction, AuditActor, adminPseudonym, "201"));
        state.State.Completed = true;
        state.State.AdminPseudonym = adminPseudonym;
        await state.WriteStateAsync();
        LogBootstrapped(logger, adminPseudonym, key.KeyId, key.ExpiresAt);
        return true;
    }

    public Task<bool> IsCompletedAsync() => Task.FromResult(state.State.Completed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "AUDIT bootstrap admin {Pseudonym} created with API key {KeyId}, expiring {ExpiresAt}")]
    private static partial void LogBootstrapped(ILogger logger, string pseudonym, string keyId, DateTimeOffset? expiresAt);
}

/// <summary>Whether the bootstrap admin has been created.</summary>
[GenerateSerializer, Alias("bastion.bootstrap-state")]
public sealed class BootstrapState
{
    [Id(0)] public bool Completed { get; set; }
    [Id(1)] public string? AdminPseudonym { get; set; }
}
