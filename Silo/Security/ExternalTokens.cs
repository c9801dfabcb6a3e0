using System.Buffers;
using System.Text.Json;
using Bastion.Access;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// Validates JWTs from configured external issuers: signature by a key from the issuer's JWKS
/// (matched by <c>kid</c>), RS256 or ES256 only, exact <c>iss</c> and <c>aud</c>, 30 s skew on Bastion's
/// clock, 8 KB at most, and no header that points at keys elsewhere; a <c>typ</c> from the issuer's allow-list, and
/// an <c>exp</c> no further than the issuer's maximum lifetime from <c>iat</c>. Anything that is not such a token,
/// however malformed, is simply not valid (null): never an exception, so never a 500.
/// </summary>
public sealed class ExternalTokens
{
    private static readonly string[] ForbiddenHeaders = ["jku", "jwk", "x5u", "x5c", "crit"];
    private static readonly string[] Algorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];
    private static readonly SearchValues<char> CompactAlphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");

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
        // The compact alphabet is ASCII, so once it holds, the length in characters is the length in bytes.
        if (_issuers.Count == 0 || token.Length > AccessTokens.MaxTokenBytes || token.AsSpan().ContainsAnyExcept(CompactAlphabet)
            || !_handler.CanReadToken(token)
            || Read(token) is not { } unverified)
        {
            return null;
        }

        if (ForbiddenHeaders.Any(name => unverified.TryGetHeaderValue<JsonElement>(name, out _))
            || _issuers.FirstOrDefault(i => string.Equals(i.Options.Issuer, unverified.Issuer, StringComparison.Ordinal)) is not { Options: not null } issuer
            || !IsAllowedType(unverified.Typ, issuer.Options))
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
            || !long.TryParse(iat, System.Globalization.CultureInfo.InvariantCulture, out var issuedAt)
            || result.ClaimsIdentity.FindFirst(JwtRegisteredClaimNames.Exp)?.Value is not { } exp
            || !long.TryParse(exp, System.Globalization.CultureInfo.InvariantCulture, out var expires)
            || expires - issuedAt > (long)issuer.Options.MaxLifetime.TotalSeconds)
        {
            return null;
        }

        var userId = $"{issuer.Options.Name}:{subject}";
        return (_pseudonyms.Pseudonymize(userId),
            new Credential(CredentialKind.ExternalToken, issuer.Options.Name, [], 0, DateTimeOffset.FromUnixTimeSeconds(issuedAt)));
    }

    private JsonWebToken? Read(string token)
    {
        try
        {
            return _handler.ReadJsonWebToken(token);
        }
        catch (Exception exception) when (exception is SecurityTokenException or ArgumentException or JsonException or FormatException or InvalidOperationException or OverflowException)
        {
            // Not base64url, not JSON, a header or payload of the wrong shape: not a token, and never a 500.
            return null;
        }
    }

    private static bool IsAllowedType(string? type, ExternalIssuerOptions issuer)
    {
        if (string.IsNullOrEmpty(type))
        {
            return false;
        }

        var bare = WithoutApplicationPrefix(type);
        return issuer.EffectiveTypes.Any(allowed => string.Equals(bare, WithoutApplicationPrefix(allowed), StringComparison.OrdinalIgnoreCase));
    }

    private static string WithoutApplicationPrefix(string type) =>
        type.StartsWith("application/", StringComparison.OrdinalIgnoreCase) ? type["application/".Length..] : type;

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
