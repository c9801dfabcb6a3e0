namespace Bastion.Users;

/// <summary>
/// Seals a user id under that user's own data key, so that where it is stored (the user directory) it is erased
/// with the user: once the key is destroyed, neither the live row nor any backup of it opens again.
/// </summary>
public interface IUserIdProtector
{
    /// <summary>The id of the user <paramref name="pseudonym"/>, sealed under their data key.</summary>
    Task<byte[]> ProtectAsync(string pseudonym, string userId);

    /// <summary>The id sealed by <see cref="ProtectAsync"/>, or null when the user's key was destroyed (erased).</summary>
    Task<string?> UnprotectAsync(string pseudonym, byte[] protectedUserId);
}
