namespace Bastion.Users;

/// <summary>
/// Routes an API key id to the pseudonym of the user who owns it, so that a presented key can reach
/// the owner's grain. Holds no secret.
/// </summary>
[Alias("bastion.api-key-route")]
public interface IApiKeyRouteGrain : IGrainWithStringKey
{
    /// <summary>Binds this key id to its owner. Returns false when the id is already bound to someone else.</summary>
    [Alias("bind")]
    Task<bool> BindAsync(string ownerPseudonym);

    /// <summary>Forgets the binding (the key's owner was deleted).</summary>
    [Alias("unbind")]
    Task UnbindAsync();

    /// <summary>The owner's pseudonym, or null for an unknown key id.</summary>
    [Alias("get-owner")]
    Task<string?> GetOwnerAsync();
}
