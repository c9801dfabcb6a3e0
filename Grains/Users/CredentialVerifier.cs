using System.Security.Cryptography;
using Bastion.Access;

namespace Bastion.Users;

/// <summary>
/// Whether a credential still holds against a user's state: the key exists, is unexpired and unrevoked, the
/// presented secret's hash (made under the version stored with the key) matches in constant time, an access
/// token's revocation generation is current, and an external or service token was issued after the last
/// revoke-tokens. Pure, so every rule is unit-tested without a grain.
/// </summary>
public static class CredentialVerifier
{
    /// <summary>Why <paramref name="credential"/> does not hold for <paramref name="user"/> at <paramref name="now"/>, or <see cref="DenialReason.None"/>.</summary>
    public static DenialReason Verify(UserState user, Credential credential, DateTimeOffset now)
    {
        if (!user.Exists)
        {
            return DenialReason.NotAuthenticated;
        }

        var credentialHolds = credential.Kind switch
        {
            CredentialKind.ApiKey => LiveKey(user, credential, now) is { } key
                && credential.SecretHashes.FirstOrDefault(hash => hash.Version == key.HashKeyVersion) is { } presented
                && CryptographicOperations.FixedTimeEquals(presented.Hash, key.SecretHash),
            CredentialKind.AccessToken => LiveKey(user, credential, now) is not null
                && credential.RevocationGeneration == user.RevocationGeneration,

            // The issuer vouches for who; only whether the user may act is Bastion's to say.
            CredentialKind.ExternalToken or CredentialKind.ServiceToken => credential.IssuedAt is { } issuedAt && issuedAt > user.ExternalTokensRevokedAt,
            _ => false,
        };
        if (!credentialHolds)
        {
            return DenialReason.NotAuthenticated;
        }

        return user.Suspended ? DenialReason.Suspended : DenialReason.None;
    }

    /// <summary>
    /// True when <paramref name="credential"/> is an API key of <paramref name="user"/> that is live (exists, unexpired,
    /// unrevoked) but whose secret does not match: someone holds the key id and is guessing. A revoked or expired key that
    /// a forgotten job keeps presenting is not a guess, so it is not counted.
    /// </summary>
    public static bool IsWrongSecret(UserState user, Credential credential, DateTimeOffset now) =>
        user.Exists && credential.Kind == CredentialKind.ApiKey && LiveKey(user, credential, now) is not null
        && Verify(user, credential, now) == DenialReason.NotAuthenticated;

    /// <summary>True when <paramref name="credential"/> names an API key of <paramref name="user"/> that has expired (and was not revoked).</summary>
    public static bool IsExpiredKey(UserState user, Credential credential, DateTimeOffset now) =>
        user.Exists && credential.Kind == CredentialKind.ApiKey && user.ApiKeys.TryGetValue(credential.KeyId, out var key)
        && !key.Revoked && key.ExpiresAt is { } expiry && expiry <= now;

    private static StoredApiKey? LiveKey(UserState user, Credential credential, DateTimeOffset now) =>
        user.ApiKeys.TryGetValue(credential.KeyId, out var key) && !key.Revoked && (key.ExpiresAt is not { } expiry || expiry > now)
            ? key
            : null;
}
