using Bastion.Access;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// Issues and validates Bastion's short-lived access tokens (JWT, <c>typ: at+jwt</c>, ES256).
/// Validation is strict (RFC 8725): ES256 or RS256 as the <c>kid</c>'s key dictates, a header of only
/// <c>alg</c>/<c>typ</c>/<c>kid</c>, keys only from the key provider, 30 s skew, 15 minutes and 8 KB at most.
/// </summary>
public sealed class AccessTokens(IKeyProvider keys, IOptions<TokenOptions> options, TimeProvider time)
{
    /// <summary>The largest token accepted.</summary>
    public const int MaxTokenBytes = 8 * 1024;

    /// <summary>How far a token's times may disagree with Bastion's clock.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    /// <summary>The longest lifetime accepted, whatever is configured.</summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(15);

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false, SetDefaultTimesOnTokenCreation = false };

    /// <summary>A signed token for the user with the given pseudonym, tied to the API key it was exchanged for.</summary>
    public (string Token, int ExpiresInSeconds) Issue(string pseudonym, string keyId, long revocationGeneration)
    {
        var now = time.GetUtcNow();
        var lifetime = options.Value.Lifetime;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = options.Value.Issuer,
            Audience = options.Value.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = now.Add(lifetime).UtcDateTime,
            TokenType = AccessTokenReader.TokenType,
            SigningCredentials = keys.SigningCredentials,
            Claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = pseudonym,
                [JwtRegisteredClaimNames.Jti] = Guid.NewGuid().ToString("N"),
                [AccessTokenReader.KeyIdClaim] = keyId,
                [AccessTokenReader.GenerationClaim] = revocationGeneration,
            },
        };
        return (_handler.CreateToken(descriptor), (int)lifetime.TotalSeconds);
    }

    /// <summary>The caller a token names, or null when the token is not one Bastion accepts.</summary>
    /// <remarks>
    /// Every check that needs no key runs first (see <see cref="AccessTokenReader"/>); then the
    /// <c>kid</c> picks exactly one configured key, whose type fixes the only acceptable <c>alg</c>;
    /// times are judged on the injected clock; the handler verifies the signature last.
    /// </remarks>
    public async Task<(string Pseudonym, Credential Credential)?> ValidateAsync(string token)
    {
        if (!AccessTokenReader.TryRead(token, MaxTokenBytes, out var header, out var claims)
            || FindKey(header!.KeyId) is not { } key
            || SigningKeyAlgorithms.For(key) != header.Algorithm
            || !string.Equals(claims!.Issuer, options.Value.Issuer, StringComparison.Ordinal)
            || !string.Equals(claims.Audience, options.Value.Audience, StringComparison.Ordinal)
            || !IsCurrent(claims))
        {
            return null;
        }

        var parameters = new TokenValidationParameters
        {
            ValidIssuer = options.Value.Issuer,
            ValidAudience = options.Value.Audience,
            ValidTypes = [AccessTokenReader.TokenType],
            ValidAlgorithms = [header.Algorithm],
            IssuerSigningKey = key,
            TryAllIssuerSigningKeys = false,
            RequireSignedTokens = true,
            RequireExpirationTime = true,

            // Judged above on Bastion's injected clock; the handler's own check reads the machine clock.
            ValidateLifetime = false,
        };
        var result = await _handler.ValidateTokenAsync(token, parameters);
        return result.IsValid
            ? (claims.Subject, new Credential(CredentialKind.AccessToken, claims.KeyId, [], claims.RevocationGeneration))
            : null;
    }

    // An exact match on the configured set: a kid is never a path, a query or a URL, and keys are never tried in turn.
    private SecurityKey? FindKey(string keyId)
    {
        foreach (var key in keys.ValidationKeys)
        {
            if (string.Equals(key.KeyId, keyId, StringComparison.Ordinal))
            {
                return key;
            }
        }

        return null;
    }

    private bool IsCurrent(AccessTokenClaims claims)
    {
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var skew = (long)ClockSkew.TotalSeconds;
        var lifetime = (long)Math.Min(options.Value.Lifetime.TotalSeconds, MaxLifetime.TotalSeconds);
        return now <= claims.Expires + skew
            && claims.IssuedAt <= now + skew
            && claims.NotBefore <= now + skew
            && claims.IssuedAt <= claims.Expires
            && claims.NotBefore <= claims.Expires
            && claims.Expires - claims.IssuedAt <= lifetime;
    }
}
