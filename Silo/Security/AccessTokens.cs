using System.Text;
using Bastion.Access;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// Issues and validates Bastion's short-lived access tokens (JWT, <c>typ: at+jwt</c>, ES256).
/// Validation is strict: one algorithm, keys only from the key provider, 30 s skew, 8 KB at most.
/// </summary>
public sealed class AccessTokens(IKeyProvider keys, IOptions<TokenOptions> options, TimeProvider time)
{
    /// <summary>The largest token accepted.</summary>
    public const int MaxTokenBytes = 8 * 1024;

    private const string TokenType = "at+jwt";
    private const string KeyIdClaim = "key_id";
    private const string GenerationClaim = "rev";

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
            TokenType = TokenType,
            SigningCredentials = keys.SigningCredentials,
            Claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = pseudonym,
                [JwtRegisteredClaimNames.Jti] = Guid.NewGuid().ToString("N"),
                [KeyIdClaim] = keyId,
                [GenerationClaim] = revocationGeneration,
            },
        };
        return (_handler.CreateToken(descriptor), (int)lifetime.TotalSeconds);
    }

    /// <summary>The caller a token names, or null when the token is not one Bastion accepts.</summary>
    public async Task<(string Pseudonym, Credential Credential)?> ValidateAsync(string token)
    {
        if (Encoding.UTF8.GetByteCount(token) > MaxTokenBytes)
        {
            return null;
        }

        var parameters = new TokenValidationParameters
        {
            ValidIssuer = options.Value.Issuer,
            ValidAudience = options.Value.Audience,
            ValidTypes = [TokenType],
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            IssuerSigningKeys = keys.ValidationKeys,
            TryAllIssuerSigningKeys = false,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = TimeSpan.FromSeconds(30),
            LifetimeValidator = ValidateLifetime,
        };
        var result = await _handler.ValidateTokenAsync(token, parameters);
        if (!result.IsValid
            || result.ClaimsIdentity.FindFirst(JwtRegisteredClaimNames.Sub)?.Value is not { Length: > 0 } pseudonym
            || result.ClaimsIdentity.FindFirst(KeyIdClaim)?.Value is not { Length: > 0 } keyId
            || !long.TryParse(result.ClaimsIdentity.FindFirst(GenerationClaim)?.Value, out var generation))
        {
            return null;
        }

        return (pseudonym, new Credential(CredentialKind.AccessToken, keyId, [], 0, generation));
    }

    // The handler's default lifetime check reads the machine clock; Bastion's time is injected.
    private bool ValidateLifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters parameters)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return expires is { } exp
            && now <= exp.Add(parameters.ClockSkew)
            && (notBefore is not { } nbf || nbf <= now.Add(parameters.ClockSkew))
            && exp - (notBefore ?? exp) <= options.Value.Lifetime;
    }
}
