namespace Bastion.Users;

/// <summary>
/// The list of users and admins. One activation serialises every change, so the last-admin rule
/// cannot be raced; its ETag-checked write keeps that true across a duplicate activation.
/// </summary>
/// <remarks>
/// The directory's state is sealed under the system data key, which is never destroyed, so it keeps no user id in
/// the clear: each entry holds its user's id sealed under that user's own data key (<see cref="IUserIdProtector"/>).
/// Erasing the user destroys that key, which makes the id unreadable in the live row and in every backup of it, even
/// before the entry itself is removed. The price is paid by <see cref="ListAsync"/>: ids are ordered only once opened,
/// so the first listing after an activation opens every entry (one key-store read per user whose key this silo has
/// not cached); the opened ids are then kept in memory only, never written.
/// </remarks>
[GrainType("bastion.user-directory")]
public sealed class UserDirectoryGrain(
    [PersistentState("user-directory", StorageNames.Bastion)] IPersistentState<UserDirectoryState> state,
    IUserIdProtector userIds,
    TimeProvider time) : Grain, IUserDirectoryGrain
{
    private readonly Dictionary<string, string> _openedIds = new(StringComparer.Ordinal);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Entries written before ids were sealed: seal them now, so the raw id leaves the stored state.
        var legacy = state.State.Users.Where(pair => pair.Value.UserId.Length > 0).ToList();
        foreach (var (pseudonym, record) in legacy)
        {
            record.ProtectedUserId = await userIds.ProtectAsync(pseudonym, record.UserId);
            record.UserId = "";
        }

        if (legacy.Count > 0)
        {
            await state.WriteStateAsync(cancellationToken);
        }
    }

    public async Task<bool> AddAsync(string pseudonym, string userId, bool isAdmin)
    {
        if (state.State.Users.ContainsKey(pseudonym))
        {
            return false;
        }

        var record = new DirectoryRecord { ProtectedUserId = await userIds.ProtectAsync(pseudonym, userId), IsAdmin = isAdmin, CreatedAt = time.GetUtcNow() };
        state.State.Users.Add(pseudonym, record);
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State.Users.Remove(pseudonym);
            throw;
        }

        _openedIds[pseudonym] = userId;
        return true;
    }

    public async Task<IReadOnlyList<DirectoryEntry>> ListAsync(string? afterUserId, int limit)
    {
        var listed = state.State.Users.Where(pair => !pair.Value.Erasing && pair.Value.ProtectedUserId is not null).ToList();
        var unopened = listed.Where(pair => !_openedIds.ContainsKey(pair.Key)).ToList();
        var opened = await Task.WhenAll(unopened.Select(pair => userIds.UnprotectAsync(pair.Key, pair.Value.ProtectedUserId!)));
        for (var i = 0; i < unopened.Count; i++)
        {
            if (opened[i] is { } id)
            {
                _openedIds[unopened[i].Key] = id;
            }
        }

        return [.. listed
            .Where(pair => _openedIds.ContainsKey(pair.Key))
            .Select(pair => new DirectoryEntry(_openedIds[pair.Key], pair.Value.IsAdmin, pair.Value.CreatedAt))
            .Where(user => afterUserId is null || string.CompareOrdinal(user.UserId, afterUserId) > 0)
            .OrderBy(user => user.UserId, StringComparer.Ordinal)
            .Take(limit)];
    }

    public async Task<DirectoryChange> SetAdminAsync(string pseudonym, bool isAdmin)
    {
        if (!state.State.Users.TryGetValue(pseudonym, out var user) || user.Erasing)
        {
            return DirectoryChange.NotFound;
        }

        if (user.IsAdmin && !isAdmin && IsLastAdmin(pseudonym))
        {
            return DirectoryChange.LastAdmin;
        }

        user.IsAdmin = isAdmin;
        await state.WriteStateAsync();
        return DirectoryChange.Applied;
    }

    public async Task<DirectoryChange> BeginRemoveAsync(string pseudonym)
    {
        if (!state.State.Users.TryGetValue(pseudonym, out var user))
        {
            return DirectoryChange.NotFound;
        }

        if (user.Erasing)
        {
            return DirectoryChange.Applied;
        }

        if (user.IsAdmin && IsLastAdmin(pseudonym))
        {
            return DirectoryChange.LastAdmin;
        }

        user.Erasing = true;
        _openedIds.Remove(pseudonym);
        await state.WriteStateAsync();
        return DirectoryChange.Applied;
    }

    public async Task<DirectoryChange> RemoveAsync(string pseudonym)
    {
        if (!state.State.Users.TryGetValue(pseudonym, out var user))
        {
            return DirectoryChange.NotFound;
        }

        if (!user.Erasing && user.IsAdmin && IsLastAdmin(pseudonym))
        {
            return DirectoryChange.LastAdmin;
        }

        state.State.Users.Remove(pseudonym);
        _openedIds.Remove(pseudonym);
        await state.WriteStateAsync();
        return DirectoryChange.Applied;
    }

    // An admin being erased no longer counts: two admins deleting each other cannot leave none.
    private bool IsLastAdmin(string pseudonym) => !state.State.Users.Any(pair => pair.Value.IsAdmin && !pair.Value.Erasing && pair.Key != pseudonym);
}

/// <summary>The persisted directory, keyed by pseudonym.</summary>
[GenerateSerializer, Alias("bastion.user-directory-state")]
public sealed class UserDirectoryState
{
    [Id(0)] public Dictionary<string, DirectoryRecord> Users { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One user in the directory.</summary>
[GenerateSerializer, Alias("bastion.directory-record")]
public sealed class DirectoryRecord
{
    /// <summary>Written by versions before ids were sealed; empty since (sealed on activation, see <see cref="ProtectedUserId"/>).</summary>
    [Id(0)] public string UserId { get; set; } = "";
    [Id(1)] public bool IsAdmin { get; set; }
    [Id(2)] public DateTimeOffset CreatedAt { get; set; }

    /// <summary>The user id, sealed under the user's own data key (<see cref="IUserIdProtector"/>).</summary>
    [Id(3)] public byte[]? ProtectedUserId { get; set; }

    /// <summary>The user's erasure has begun: not listed, no longer counted as an admin, removed when it completes.</summary>
    [Id(4)] public bool Erasing { get; set; }
}
