using System.Collections.Concurrent;
using System.Text.Json;
using Bastion.Security;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Cluster;

/// <summary>A service whose token a silo has verified.</summary>
/// <param name="Service">The service's name (a provisioned Bastion user).</param>
/// <param name="ActingFor">The user id the token lets it act for, or null.</param>
/// <param name="IssuedAt">The token's <c>iat</c>: a revoke-tokens on the service after it refuses the token.</param>
public sealed record ServiceCaller(string Service, string? ActingFor, DateTimeOffset IssuedAt);

/// <summary>
/// Validates service tokens as strictly as access tokens (<see cref="AccessTokenReader"/>, RFC 8725): 8 KB at most,
/// a header of only <c>alg</c> (ES256), <c>typ</c> (<c>svc+jwt</c>) and <c>kid</c> (the service's name, which picks
/// exactly one configured public key), no member named twice, <c>iss</c> = <c>sub</c> = <c>kid</c>,
/// <c>aud</c> = <c>bastion-cluster</c>, <c>jti</c>, <c>iat</c>, <c>nbf</c> and <c>exp</c> present, at most 5 minutes
/// of lifetime and 30 s of skew on the injected clock; the signature is verified last. A valid token is remembered
/// until it expires, so a service's repeated calls cost one dictionary look-up each.
/// </summary>
public sealed class ServiceTokens(ServiceKeys keys, TimeProvider time)
{
    private const int CacheCapacity = 4096;

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly ConcurrentDictionary<string, (ServiceCaller Caller, long Expires)> _verified = new(StringComparer.Ordinal);

    /// <summary>The service a token proves, or null when the token is missing or not one Bastion accepts.</summary>
    public async ValueTask<ServiceCaller?> ValidateAsync(string? token)
    {
        if (token is null)
        {
            return null;
        }

        var now = time.GetUtcNow().ToUnixTimeSeconds();
        if (_verified.TryGetValue(token, out var known))
        {
            if (now <= known.Expires + (long)AccessTokens.ClockSkew.TotalSeconds)
            {
                return known.Caller;
            }

            _verified.TryRemove(token, out _);
            return null;
        }

        if (!AccessTokenReader.TryReadCompact(token, AccessTokens.MaxTokenBytes, ServiceCallContext.TokenType, out var header, out var payload)
            || header!.Algorithm != SecurityAlgorithms.EcdsaSha256
            || keys.Find(header.KeyId) is not { } key
            || ReadClaims(payload) is not { } claims
            || !string.Equals(claims.Issuer, header.KeyId, StringComparison.Ordinal)
            || !string.Equals(claims.Subject, header.KeyId, StringComparison.Ordinal)
            || !string.Equals(claims.Audience, ServiceCallContext.Audience, StringComparison.Ordinal)
            || !IsCurrent(claims, now))
        {
            return null;
        }

        var result = await _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = header.KeyId,
            ValidAudience = ServiceCallContext.Audience,
            ValidTypes = [ServiceCallContext.TokenType],
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            IssuerSigningKey = key,
            TryAllIssuerSigningKeys = false,
            RequireSignedTokens = true,
            RequireExpirationTime = true,

            // Judged above on the injected clock; the handler's own check reads the machine clock.
            ValidateLifetime = false,
        });
        if (!result.IsValid)
        {
            return null;
        }

        var caller = new ServiceCaller(claims.Subject, claims.ActingFor, DateTimeOffset.FromUnixTimeSeconds(claims.IssuedAt));
        if (_verified.Count >= CacheCapacity)
        {
            _verified.Clear();
        }

        _verified[token] = (caller, claims.Expires);
        return caller;
    }

    private static bool IsCurrent(ServiceTokenClaims claims, long now)
    {
        var skew = (long)AccessTokens.ClockSkew.TotalSeconds;
        return now <= claims.Expires + skew
            && claims.IssuedAt <= now + skew
            && claims.NotBefore <= now + skew
            && claims.NotBefore <= claims.Expires
            && claims.IssuedAt <= claims.Expires
            && claims.Expires - claims.IssuedAt <= (long)ServiceCallContext.MaxTokenLifetime.TotalSeconds;
    }

    private static ServiceTokenClaims? ReadClaims(byte[] json)
    {
        try
        {
            string? issuer = null, audience = null, subject = null, tokenId = null, actingFor = null;
            long? issuedAt = null, notBefore = null, expires = null;
            var read = AccessTokenReader.TryReadMembers(json, (string name, ref Utf8JsonReader reader) => name switch
            {
                "iss" => AccessTokenReader.TryString(ref reader, out issuer),
                "aud" => AccessTokenReader.TryString(ref reader, out audience),
                "sub" => AccessTokenReader.TryString(ref reader, out subject),
                "jti" => AccessTokenReader.TryString(ref reader, out tokenId),
                ServiceCallContext.ActorClaim => AccessTokenReader.TryString(ref reader, out actingFor),
                "iat" => AccessTokenReader.TryNumericDate(ref reader, out issuedAt),
                "nbf" => AccessTokenReader.TryNumericDate(ref reader, out notBefore),
                "exp" => AccessTokenReader.TryNumericDate(ref reader, out expires),
                _ => reader.TrySkip(),
            });

            return read
                && issuer is not null && audience is not null && subject is not null && tokenId is not null
                && issuedAt is { } iat && notBefore is { } nbf && expires is { } exp
                ? new ServiceTokenClaims(issuer, audience, subject, actingFor, iat, nbf, exp)
                : null;
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private sealed record ServiceTokenClaims(string Issuer, string Audience, string Subject, string? ActingFor, long IssuedAt, long NotBefore, long Expires);
}
