using System.ComponentModel.DataAnnotations;

namespace Bastion.Security;

/// <summary>
/// Identity providers whose JWTs Bastion accepts (<c>Bastion:Auth:ExternalIssuers:N</c>). A token's
/// (<c>iss</c>, <c>sub</c>) maps to the Bastion user <c>{Name}:{sub}</c>, who must have been provisioned
/// by an admin; the issuer's role claims are never read.
/// </summary>
public sealed class AuthOptions
{
    public const string SectionName = "Bastion:Auth";

    public List<ExternalIssuerOptions> ExternalIssuers { get; set; } = [];
}

/// <summary>One external issuer.</summary>
public sealed class ExternalIssuerOptions
{
    /// <summary>The prefix of mapped user ids: letters, digits and '-'.</summary>
    [Required, RegularExpression("^[a-z0-9-]{1,32}$")]
    public string Name { get; set; } = "";

    /// <summary>The exact <c>iss</c> value.</summary>
    [Required]
    public string Issuer { get; set; } = "";

    /// <summary>The <c>aud</c> value tokens must carry for Bastion.</summary>
    [Required]
    public string Audience { get; set; } = "";

    /// <summary>
    /// The issuer's JWKS document (public keys), read at start. Keys are taken from here only, never
    /// from a token's <c>jku</c>, <c>x5u</c>, <c>x5c</c> or <c>jwk</c>.
    /// </summary>
    [Required]
    public string JwksFile { get; set; } = "";
}
