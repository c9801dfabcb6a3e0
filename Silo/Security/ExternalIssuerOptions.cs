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

    /// <summary>
    /// The <c>typ</c> header values accepted (case-insensitive; an <c>application/</c> prefix is ignored, RFC 7515
    /// §4.1.9). Unset means <see cref="DefaultTypes"/>. A token without <c>typ</c> is refused: the header is what keeps
    /// an ID token or a token minted for another purpose from passing as an access token.
    /// </summary>
    public string[]? AllowedTypes { get; set; }

    /// <summary>
    /// The longest lifetime (<c>exp</c> − <c>iat</c>) a token may claim; a longer one is refused, so a leaked token is
    /// useful for at most this long. Between 1 second and 1 day; 1 hour by default.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary><c>JWT</c> (what most identity providers write) and <c>at+jwt</c> (RFC 9068 access tokens).</summary>
    public static IReadOnlyList<string> DefaultTypes { get; } = ["JWT", "at+jwt"];

    /// <summary>The accepted types: <see cref="AllowedTypes"/>, or the defaults when unset.</summary>
    public IReadOnlyList<string> EffectiveTypes => AllowedTypes is { Length: > 0 } types ? types : DefaultTypes;
}
