using System.ComponentModel.DataAnnotations;

namespace Bastion.Security;

/// <summary>Access tokens that Bastion issues in exchange for an API key.</summary>
public sealed class TokenOptions
{
    public const string SectionName = "Bastion:Tokens";

    [Required]
    public string Issuer { get; set; } = "bastion";

    [Required]
    public string Audience { get; set; } = "bastion-api";

    /// <summary>Token lifetime; at most 15 minutes.</summary>
    [Range(typeof(TimeSpan), "00:00:30", "00:15:00")]
    public TimeSpan Lifetime { get; set; } = TimeSpan.FromMinutes(15);
}
