using Bastion.Audit;
using Bastion.Storage;
using Bastion.Users;

namespace Bastion.Api;

/// <summary>
/// Deletes a user everywhere (<c>DELETE /admin/users/{id}</c>, <c>DELETE /v1/me</c>), in an order that a failure at
/// any step can only leave retryable, never half-undone:
/// <list type="number">
/// <item>the directory marks the user as being erased (it enforces the last-admin rule);</item>
/// <item>the key store records the erasure and destroys the user's data key in one transaction: from then on every
/// stored copy of the user's state, the directory's sealed copy of their id included, is unreadable, backups too;</item>
/// <item>every silo evicts and zeroes its cached copy of the key;</item>
/// <item>the rest is removed: the user grain's row, their API-key routes, the directory entry; then the record is
/// marked complete.</item>
/// </list>
/// A retry after a failure anywhere finds the directory mark or the open record and runs the remaining steps again;
/// each of them is idempotent.
/// </summary>
public sealed partial class UserErasure(
    IGrainFactory grains, DataKeyStore dataKeys, DataKeyEvictionBroadcast eviction, IAuditTrail audit, TimeProvider time, ILogger<UserErasure> logger)
{
    /// <summary>Erases the user <paramref name="pseudonym"/>, or finishes an erasure that failed midway.</summary>
    /// <returns><see cref="DirectoryChange.Applied"/> once everything is gone; NotFound or LastAdmin when nothing was done.</returns>
    public async Task<DirectoryChange> EraseAsync(string pseudonym)
    {
        var scope = DataKeyScope.ForUser(pseudonym);
        var directory = grains.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key);
        var user = grains.GetGrain<IUserGrain>(pseudonym);
        switch (await directory.BeginRemoveAsync(pseudonym))
        {
            case DirectoryChange.LastAdmin:
                return DirectoryChange.LastAdmin;
            case DirectoryChange.NotFound when await dataKeys.FindOpenErasureAsync(scope, CancellationToken.None) is null:
                return DirectoryChange.NotFound;
        }

        // The key ids are read while the state still opens, and recorded with the erasure, so a retry can unbind them.
        IReadOnlyList<string> keyIds = [.. (await user.GetProfileAsync())?.ApiKeys.Select(key => key.Id) ?? []];
        var recorded = await dataKeys.BeginErasureAsync(scope, keyIds, CancellationToken.None);
        LogErasureBegun(logger, pseudonym);

        // Once the key is gone, and before anything else: the trail is what a key-store restore re-destroys from
        // (`audit redestroy-erased`). A retry after a failure here finds the open erasure and records it again.
        await audit.RecordAsync(new AuditRecord(time.GetUtcNow(), AuditLedger.ErasureAction, "system", pseudonym, "ok"));

        await eviction.EvictEverywhereAsync(scope);

        var unrecorded = await user.DeleteAsync() ?? [];
        await Task.WhenAll(recorded.Union(unrecorded, StringComparer.Ordinal).Select(keyId => grains.GetGrain<IApiKeyRouteGrain>(keyId).UnbindAsync()));
        await directory.RemoveAsync(pseudonym);
        await dataKeys.CompleteErasureAsync(scope, CancellationToken.None);
        LogErasureCompleted(logger, pseudonym);
        return DirectoryChange.Applied;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} erasure begun: data key destroyed")]
    private static partial void LogErasureBegun(ILogger logger, string pseudonym);

    [LoggerMessage(Level = LogLevel.Information, Message = "User {Pseudonym} erasure completed")]
    private static partial void LogErasureCompleted(ILogger logger, string pseudonym);
}
