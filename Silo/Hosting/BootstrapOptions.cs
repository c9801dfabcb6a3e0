using System.ComponentModel.DataAnnotations;

namespace Bastion.Hosting;

/// <summary>The first admin, created once when no admin has ever existed.</summary>
public sealed class BootstrapOptions
{
    public const string SectionName = "Bastion:Bootstrap";

    public bool Enabled { get; set; } = true;

    /// <summary>The user id of the bootstrap admin.</summary>
    [Required]
    public string AdminId { get; set; } = "admin";

    /// <summary>Where the bootstrap admin's API key is written (mode 0600); defaults to the data directory.</summary>
    public string? KeyFile { get; set; }

    /// <summary>The bootstrap key expires: create real admins and their keys with it, then let it lapse.</summary>
    [Range(typeof(TimeSpan), "00:05:00", "90.00:00:00")]
    public TimeSpan KeyLifetime { get; set; } = TimeSpan.FromDays(30);
}
