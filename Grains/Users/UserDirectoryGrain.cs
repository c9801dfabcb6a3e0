namespace Bastion.Users;

/// <summary>
/// The list of users and admins. One activation serialises every change, so the last-admin rule
/// cannot be raced; its ETag-checked write keeps that true across a duplicate activation.
/// </summary>
[GrainType("bastion.user-directory")]
public sealed class UserDirectoryGrain(
    [PersistentState("user-directory", StorageNames.Bastion)] IPersistentState<UserDirectoryState> state,
    TimeProvider time) : Grain, IUserDirectoryGrain
{
    public async Task<bool> AddAsync(string pseudonym, string userId, bool isAdmin)
    {
        if (!state.State.Users.TryAdd(pseudonym, new DirectoryRecord { UserId = userId, IsAdmin = isAdmin, CreatedAt = time.GetUtcNow() }))
        {
            return false;
        }

        await state.WriteStateAsync();
        return true;
    }

    public Task<IReadOnlyList<DirectoryEntry>> ListAsync(string? afterUserId, int limit) => Task.FromResult<IReadOnlyList<DirectoryEntry>>(
        [.. state.State.Users.Values
            .Where(user => afterUserId is null || string.CompareOrdinal(user.UserId, afterUserId) > 0)
            .OrderBy(user => user.UserId, StringComparer.Ordinal)
            .Take(limit)
            .Select(user => new DirectoryEntry(user.UserId, user.IsAdmin, user.CreatedAt))]);

    public async Task<DirectoryChange> SetAdminAsync(string pseudonym, bool isAdmin)
    {
        if (!state.State.Users.TryGetValue(pseudonym, out var user))
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

    public async Task<DirectoryChange> RemoveAsync(string pseudonym)
    {
        if (!state.State.Users.TryGetValue(pseudonym, out var user))
        {
            return DirectoryChange.NotFound;
        }

        if (user.IsAdmin && IsLastAdmin(pseudonym))
        {
            return DirectoryChange.LastAdmin;
        }

        state.State.Users.Remove(pseudonym);
        await state.WriteStateAsync();
        return DirectoryChange.Applied;
    }

    private bool IsLastAdmin(string pseudonym) => !state.State.Users.Any(pair => pair.Value.IsAdmin && pair.Key != pseudonym);
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
    [Id(0)] public string UserId { get; set; } = "";
    [Id(1)] public bool IsAdmin { get; set; }
    [Id(2)] public DateTimeOffset CreatedAt { get; set; }
}
