namespace Bastion.Storage;

/// <summary>
/// Which data key (DEK) protects a grain's state. A user grain (keyed by the user's pseudonym) has
/// its own scope, so destroying that one key erases the user's state everywhere, backups included.
/// Every other grain (API-key routes, the user directory, the audit log, bootstrap) shares the
/// system scope: their state is not any one user's, and erasing a user from them is their own job
/// (the directory and routes remove the user's entries; the audit log keeps pseudonyms only).
/// </summary>
public static class DataKeyScope
{
    /// <summary>The scope of all grain state that belongs to no single user.</summary>
    public const string System = "system";

    /// <summary>The grain type whose key is a user's pseudonym (<c>[GrainType]</c> of the user grain).</summary>
    public const string UserGrainType = "bastion.user";

    private const string UserPrefix = "user:";

    private static readonly byte[] UserGrainTypeUtf8 = global::System.Text.Encoding.UTF8.GetBytes(UserGrainType);

    /// <summary>The scope for <paramref name="grainType"/> / <paramref name="grainKey"/>.</summary>
    public static string For(string grainType, string grainKey) =>
        string.Equals(grainType, UserGrainType, StringComparison.Ordinal) ? UserPrefix + grainKey : System;

    /// <summary>The scope of the grain <paramref name="grainId"/>, read from its UTF-8 bytes (no string unless it is a user's).</summary>
    public static string For(GrainId grainId) =>
        grainId.Type.AsSpan().SequenceEqual(UserGrainTypeUtf8) ? UserPrefix + grainId.Key.ToString() : System;

    /// <summary>The scope of the user with pseudonym <paramref name="pseudonym"/>.</summary>
    public static string ForUser(string pseudonym) => UserPrefix + pseudonym;
}
