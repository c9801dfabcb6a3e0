using System.ComponentModel.DataAnnotations;

namespace Bastion.Hosting;

/// <summary>
/// PostgreSQL: two databases. <c>ConnectionStrings:Bastion</c> (the state database's runtime role) and
/// <c>ConnectionStrings:BastionKeys</c> (the key store's runtime role) point at external servers;
/// without them a Development node starts an embedded one holding both. <c>ConnectionStrings:BastionOwner</c>
/// and <c>ConnectionStrings:BastionKeysOwner</c> are used only by <c>migrate</c>.
/// </summary>
public sealed class DatabaseOptions
{
    public const string SectionName = "Bastion:Database";
    public const string RuntimeConnectionStringName = "Bastion";
    public const string OwnerConnectionStringName = "BastionOwner";
    public const string KeyStoreConnectionStringName = "BastionKeys";
    public const string KeyStoreOwnerConnectionStringName = "BastionKeysOwner";

    /// <summary>The least-privilege role serving silos connect to the state database as; migrations grant it its rights.</summary>
    [Required]
    public string RuntimeRole { get; set; } = "bastion_runtime";

    /// <summary>The key store's runtime role: it may only read, create and destroy data keys.</summary>
    [Required]
    public string KeyStoreRuntimeRole { get; set; } = "bastion_keys_runtime";
}
