using System.ComponentModel.DataAnnotations;

namespace Bastion.Hosting;

/// <summary>
/// PostgreSQL. <c>ConnectionStrings:Bastion</c> (runtime role) points at an external server; without
/// it a Development node starts an embedded one. <c>ConnectionStrings:BastionOwner</c> is used only by
/// <c>migrate</c>.
/// </summary>
public sealed class DatabaseOptions
{
    public const string SectionName = "Bastion:Database";
    public const string RuntimeConnectionStringName = "Bastion";
    public const string OwnerConnectionStringName = "BastionOwner";

    /// <summary>The least-privilege role serving silos connect as; migrations grant it its rights.</summary>
    [Required]
    public string RuntimeRole { get; set; } = "bastion_runtime";
}
