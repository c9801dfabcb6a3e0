using System.Collections.Concurrent;
using System.Security.Cryptography;
using Bastion.Cluster;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Client;

/// <summary>
/// Signs this service's short-lived tokens (ES256, <c>typ: svc+jwt</c>, <c>kid</c> = <c>iss</c> = <c>sub</c> = the
/// service's name, <c>aud: bastion-cluster</c>, <c>act</c> = the user acted for when there is one). A token is reused
/// until a minute before it expires, one per user acted for.
/// </summary>
public sealed class ServiceTokenIssuer : IDisposable
{
    private static readonly TimeSpan RenewBefore = TimeSpan.FromMinutes(1);

    private readonly ECDsa _key;
    private readonly SigningCredentials _credentials;
    private readonly string _service;
    private readonly TimeSpan _lifetime;
    private readonly TimeProvider _time;
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);

    /// <summary>An issuer for <paramref name="service"/> signing with the P-256 private key in <paramref name="privateKeyFile"/> (PEM).</summary>
    /// <exception cref="InvalidOperationException">The file cannot be read or holds no P-256 private key; the message names the setting.</exception>
    public ServiceTokenIssuer(string service, string privateKeyFile, TimeSpan lifetime, TimeProvider time)
    {
        _service = service;
        _lifetime = lifetime;
        _time = time;
        _key = ECDsa.Create();
        try
        {
            _key.ImportFromPem(File.ReadAllText(privateKeyFile));
            _ = _key.ExportParameters(includePrivateParameters: true);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ArgumentException or CryptographicException)
        {
            _key.Dispose();
            throw new InvalidOperationException($"{BastionClientOptions.SectionName}:PrivateKeyFile must name a readable PEM file holding a P-256 private key.", exception);
        }

        if (_key.KeySize != 256)
        {
            _key.Dispose();
            throw new InvalidOperationException($"{BastionClientOptions.SectionName}:PrivateKeyFile must hold a P-256 (ES256) key.");
        }

        _credentials = new SigningCredentials(new ECDsaSecurityKey(_key) { KeyId = service }, SecurityAlgorithms.EcdsaSha256);
    }

    /// <summary>A current token for the service itself (<paramref name="actingFor"/> null) or for acting for that user.</summary>
    public string TokenFor(string? actingFor)
    {
        var now = _time.GetUtcNow();
        var slot = actingFor ?? "";
        if (_tokens.TryGetValue(slot, out var cached) && cached.Expires - RenewBefore > now)
        {
            return cached.Token;
        }

        var token = Sign(actingFor, now, now + _lifetime);
        _tokens[slot] = (token, now + _lifetime);
        return token;
    }

    /// <summary>Forgets the cached tokens, so the next call signs fresh ones (after the cluster refused one, e.g. a revoke-tokens).</summary>
    public void Reset() => _tokens.Clear();

    /// <summary>Signs a token with explicit times (the cached path uses the clock).</summary>
    internal string Sign(string? actingFor, DateTimeOffset issuedAt, DateTimeOffset expires, string audience = ServiceCallContext.Audience)
    {
        var claims = new Dictionary<string, object>
        {
            [JwtRegisteredClaimNames.Sub] = _service,
            [JwtRegisteredClaimNames.Jti] = Guid.NewGuid().ToString("N"),
        };
        if (actingFor is not null)
        {
            claims[ServiceCallContext.ActorClaim] = actingFor;
        }

        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _service,
            Audience = audience,
            IssuedAt = issuedAt.UtcDateTime,
            NotBefore = issuedAt.UtcDateTime,
            Expires = expires.UtcDateTime,
            TokenType = ServiceCallContext.TokenType,
            SigningCredentials = _credentials,
            Claims = claims,
        });
    }

    /// <summary>Releases the private key.</summary>
    public void Dispose() => _key.Dispose();
}
