namespace Bastion.Users;

/// <summary>
/// The cluster-wide list of users (a singleton keyed <c>"users"</c>): who exists and who is an admin.
/// It is what makes "the last admin cannot be removed or demoted" a single atomic check.
/// </summary>
[Alias("bastion.user-directory")]
public interface IUserDirectoryGrain : IGrainWithStringKey
{
    /// <summary>The key of the one directory.</summary>
    const string Key = "users";

    /// <summary>Adds a user, the id sealed under the user's own data key. Returns false when the pseudonym is already listed (or still being erased).</summary>
    [Alias("add")]
    Task<bool> AddAsync(string pseudonym, string userId, bool isAdmin);

    /// <summary>Users ordered by id, starting after <paramref name="afterUserId"/>.</summary>
    [Alias("list")]
    Task<IReadOnlyList<DirectoryEntry>> ListAsync(string? afterUserId, int limit);

    /// <summary>Records whether the user is an admin; refuses to demote the last admin.</summary>
    [Alias("set-admin")]
    Task<DirectoryChange> SetAdminAsync(string pseudonym, bool isAdmin);

    /// <summary>
    /// Marks a user as being erased: no longer listed, no longer counted as an admin. Refuses the last admin. Applied
    /// again (a retried erasure) when already marked.
    /// </summary>
    [Alias("begin-remove")]
    Task<DirectoryChange> BeginRemoveAsync(string pseudonym);

    /// <summary>Removes a user (the last step of their erasure); refuses to remove the last admin unless it is being erased.</summary>
    [Alias("remove")]
    Task<DirectoryChange> RemoveAsync(string pseudonym);
}

/// <summary>One listed user.</summary>
/// <param name="UserId">The user id.</param>
/// <param name="IsAdmin">Whether the user holds the admin role.</param>
/// <param name="CreatedAt">When the user was created.</param>
[GenerateSerializer, Immutable, Alias("bastion.directory-entry")]
public sealed record DirectoryEntry(
    [property: Id(0)] string UserId,
    [property: Id(1)] bool IsAdmin,
    [property: Id(2)] DateTimeOffset CreatedAt);

/// <summary>The outcome of a directory change.</summary>
public enum DirectoryChange
{
    /// <summary>Done.</summary>
    Applied = 0,

    /// <summary>No such user.</summary>
    NotFound = 1,

    /// <summary>Refused: it would leave no admin.</summary>
    LastAdmin = 2,
}
