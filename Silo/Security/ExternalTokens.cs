using System.Text.Json;
using Bastion.Access;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// Validates JWTs from configured external issuers: signature by a key from the issuer's JWKS
/// (matched by <c>kid</c>), RS256 or ES256 only, exact <c>iss</c> and <c>aud</c>, 30 s skew on Bastion's
/// clock, 8 KB at most, and no header that points at keys elsewhere.
/// </summary>
public sealed class ExternalTokens
{
    private static readonly string[] ForbiddenHeaders = ["jku", "jwk", "x5u", "x5c", "crit"];
    private static readonly string[] Algorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];

    private readonly IReadOnlyList<(ExternalIssuerOptions Options, IReadOnlyList<SecurityKey> Keys)> _issuers;
    private readonly Pseudonymizer _pseudonyms;
    private readonly TimeProvider _time;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };

    public ExternalTokens(IOptions<AuthOptions> options, Pseudonymizer pseudonyms, TimeProvider time)
    {
        _pseudonyms = pseudonyms;
        _time = time;
        _issuers = [.. options.Value.ExternalIssuers.Select((issuer, index) => (issuer, LoadKeys(issuer, index)))];
    }

    /// <summary>The provisioned user a token names, or null when it is not a valid token of a configured issuer.</summary>
    public async Task<(string Pseudonym, Credential Credential)?> ValidateAsync(string token)
    {
        if (_issuers.Count == 0 || token.Length > AccessTokens.MaxTokenBytes || !_handler.CanReadToken(token))
        {
            return null;
        }

        var unverified = _handler.ReadJsonWebToken(token);
        if (ForbiddenHeaders.Any(name => unverified.TryGetHeaderValue<JsonElement>(name, out _))
            || _issuers.FirstOrDefault(i => string.Equals(i.Options.Issuer, unverified.Issuer, StringComparison.Ordinal)) is not { Options: not null } issuer)
        {
            return null;
        }

        var keys = issuer.Keys.Where(key => string.Equals(key.KeyId, unverified.Kid, StringComparison.Ordinal)).ToList();
        var result = await _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = issuer.Options.Issuer,
            ValidAudience = issuer.Options.Audience,
            ValidAlgorithms = Algorithms,
            IssuerSigningKeys = keys,
            TryAllIssuerSigningKeys = false,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ClockSkew = AccessTokens.ClockSkew,
            LifetimeValidator = (notBefore, expires, _, _) => IsCurrent(notBefore, expires),
        });
        if (!result.IsValid
            || result.ClaimsIdentity.FindFirst(JwtRegisteredClaimNames.Sub)?.Value is not { } subject
            || !IsMappableSubject(subject)
            || result.ClaimsIdentity.FindFirst(JwtRegisteredClaimNames.Iat)?.Value is not { } iat
            || !long.TryParse(iat, out var issuedAt))
        {
            return null;
        }

        var userId = $"{issuer.Options.Name}:{subject}";
        return (_pseudonyms.Pseudonymize(userId),
            new Credential(CredentialKind.ExternalToken, issuer.Options.Name, [], 0, DateTimeOffset.FromUnixTimeSeconds(issuedAt)));
    }

    private bool IsCurrent(DateTime? notBefore, DateTime? expires)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        return expires is { } exp && now <= exp + AccessTokens.ClockSkew && (notBefore is not { } nbf || nbf <= now + AccessTokens.ClockSkew);
    }

    // Mapped ids must be valid Bastion user ids, so an admin can provision exactly this user.
    private static bool IsMappableSubject(string subject) =>
        subject.Length is > 0 and <= 90 && subject.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '@');

    private static IReadOnlyList<SecurityKey> LoadKeys(ExternalIssuerOptions issuer, int index)
    {
        var setting = $"{AuthOptions.SectionName}:ExternalIssuers:{index}:JwksFile";
        try
        {
            var keys = new JsonWebKeySet(File.ReadAllText(issuer.JwksFile)).GetSigningKeys();
            return keys.Count > 0 && keys.All(key => key.KeyId is { Length: > 0 })
                ? [.. keys]
                : throw new Hosting.StartupException($"{setting} must hold at least one signing key, each with a 'kid'.");
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ArgumentException or JsonException)
        {
            throw new Hosting.StartupException($"{setting} cannot be read as a JWKS document: {exception.Message}", exception);
        }
    }
}
