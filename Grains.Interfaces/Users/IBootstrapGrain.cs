namespace Bastion.Users;

/// <summary>
/// A cluster-wide singleton (one activation per key) that creates the first admin exactly once,
/// however many silos start at the same moment.
/// </summary>
[Alias("bastion.bootstrap")]
public interface IBootstrapGrain : IGrainWithStringKey
{
    /// <summary>The key of the one bootstrap grain.</summary>
    const string Key = "bootstrap";

    /// <summary>
    /// Creates the bootstrap admin with the given key when no admin has ever been bootstrapped.
    /// Returns true when it did; false when bootstrap had already happened.
    /// </summary>
    [Alias("ensure-admin")]
    Task<bool> EnsureAdminAsync(string adminUserId, string adminPseudonym, NewApiKey key);

    /// <summary>Whether the bootstrap admin has been created, so a restarting silo need not write a key file at all.</summary>
    [Alias("is-completed")]
    Task<bool> IsCompletedAsync();
}
