using Bastion.Access;
using Bastion.Security;
using Bastion.Users;
using Microsoft.Net.Http.Headers;

namespace Bastion.Api;

/// <summary>Who a request claims to be, as far as the edge can tell before asking the user grain.</summary>
/// <param name="Pseudonym">The user's pseudonym (their grain key).</param>
/// <param name="Credential">What the user grain must still judge.</param>
public sealed record AuthenticatedCaller(string Pseudonym, Credential Credential);

/// <summary>
/// The edge half of authentication: parses the bearer token, validates a JWT's signature and claims,
/// and routes an API key to its owner. Whatever depends on user state is left to the user grain.
/// </summary>
public sealed class CallerAuthenticator(
    ApiKeys apiKeys, AccessTokens accessTokens, ExternalTokens externalTokens, AuthenticationFailureLimiter failures, IGrainFactory grains)
{
    public async Task<AuthenticatedCaller?> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers[HeaderNames.Authorization];
        if (header.Count != 1 || header[0] is not { } value
            || !value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var token = value["Bearer ".Length..].Trim();
        if (ApiKeys.LooksLikeApiKey(token))
        {
            return await AuthenticateApiKeyAsync(context, token);
        }

        return (await accessTokens.ValidateAsync(token) ?? await externalTokens.ValidateAsync(token)) is { } validated
            ? new AuthenticatedCaller(validated.Pseudonym, validated.Credential)
            : null;
    }

    /// <summary>
    /// Routes an API key to its owner. An issued key id is recorded on the request (its failures are counted against
    /// it) and refused with <see cref="AuthenticationBlockedException"/> while blocked.
    /// </summary>
    public async Task<AuthenticatedCaller?> AuthenticateApiKeyAsync(HttpContext context, string apiKey)
    {
        if (!ApiKeys.TrySplit(apiKey, out var keyId, out var secret) || !apiKeys.IsIssuedKeyId(keyId))
        {
            return null;
        }

        context.Features.Set(new PresentedApiKey(keyId));
        failures.ThrowIfBlocked(keyId);
        if (await grains.GetGrain<IApiKeyRouteGrain>(keyId).GetOwnerAsync() is not { } owner)
        {
            return null;
        }

        return new AuthenticatedCaller(owner, new Credential(CredentialKind.ApiKey, keyId, apiKeys.HashPresented(keyId, secret), 0));
    }
}
