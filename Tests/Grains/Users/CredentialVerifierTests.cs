using Bastion.Access;
using Bastion.Users;

namespace Bastion.Tests.Grains.Users;

/// <summary>
/// Every rule a credential must pass in the user grain, one row each: the expected reason is written here by
/// hand, for a user holding one live key (hash version 2, expiring at noon), one expired, one revoked.
/// </summary>
public sealed class CredentialVerifierTests
{
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 11, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Noon = Now.AddHours(1);
    private static readonly DateTimeOffset RevokedAt = Now.AddDays(-1);
    private static readonly byte[] Live = [1, 1, 1];
    private static readonly byte[] Old = [2, 2, 2];

    public static TheoryData<string, Credential, bool, DenialReason> Cases => new()
    {
        { "api key, right hash under its version", ApiKey("live", (2, Live)), false, DenialReason.None },
        { "api key, right hash among every version", ApiKey("live", (1, Old), (2, Live), (3, Old)), false, DenialReason.None },
        { "api key, right bytes under another version", ApiKey("live", (1, Live), (3, Live)), false, DenialReason.NotAuthenticated },
        { "api key, wrong hash", ApiKey("live", (2, Old)), false, DenialReason.NotAuthenticated },
        { "api key, no hash", ApiKey("live"), false, DenialReason.NotAuthenticated },
        { "api key, one byte short", ApiKey("live", (2, [1, 1])), false, DenialReason.NotAuthenticated },
        { "api key, expired", ApiKey("expired", (2, Live)), false, DenialReason.NotAuthenticated },
        { "api key, revoked", ApiKey("revoked", (2, Live)), false, DenialReason.NotAuthenticated },
        { "api key, unknown id", ApiKey("unknown", (2, Live)), false, DenialReason.NotAuthenticated },
        { "api key, user suspended", ApiKey("live", (2, Live)), true, DenialReason.Suspended },
        { "access token, current generation", new Credential(CredentialKind.AccessToken, "live", [], 5), false, DenialReason.None },
        { "access token, older generation", new Credential(CredentialKind.AccessToken, "live", [], 4), false, DenialReason.NotAuthenticated },
        { "access token, newer generation", new Credential(CredentialKind.AccessToken, "live", [], 6), false, DenialReason.NotAuthenticated },
        { "access token, its key expired", new Credential(CredentialKind.AccessToken, "expired", [], 5), false, DenialReason.NotAuthenticated },
        { "access token, its key revoked", new Credential(CredentialKind.AccessToken, "revoked", [], 5), false, DenialReason.NotAuthenticated },
        { "access token, user suspended", new Credential(CredentialKind.AccessToken, "live", [], 5), true, DenialReason.Suspended },
        { "external token, issued after revoke-tokens", new Credential(CredentialKind.ExternalToken, "idp", [], 0, RevokedAt.AddSeconds(1)), false, DenialReason.None },
        { "external token, issued at revoke-tokens", new Credential(CredentialKind.ExternalToken, "idp", [], 0, RevokedAt), false, DenialReason.NotAuthenticated },
        { "external token, no issue time", new Credential(CredentialKind.ExternalToken, "idp", [], 0), false, DenialReason.NotAuthenticated },
        { "service token, issued before revoke-tokens", new Credential(CredentialKind.ServiceToken, "svc", [], 0, RevokedAt.AddSeconds(-1)), false, DenialReason.NotAuthenticated },
        { "service token, issued after revoke-tokens", new Credential(CredentialKind.ServiceToken, "svc", [], 0, RevokedAt.AddSeconds(1)), false, DenialReason.None },
        { "unknown kind", new Credential((CredentialKind)99, "live", [new SecretHash(2, Live)], 5, Now), false, DenialReason.NotAuthenticated },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Verify_FollowsTheTable(string name, Credential credential, bool suspended, DenialReason expected)
    {
        var user = User();
        user.Suspended = suspended;

        Assert.True(expected == CredentialVerifier.Verify(user, credential, Now), name);
    }

    [Fact]
    public void Verify_KeyExpiringAtNoon_HoldsUntilJustBeforeNoonAndNotFromNoonOn()
    {
        var credential = ApiKey("live", (2, Live));

        Assert.Equal(DenialReason.None, CredentialVerifier.Verify(User(), credential, Noon.AddTicks(-1)));
        Assert.Equal(DenialReason.NotAuthenticated, CredentialVerifier.Verify(User(), credential, Noon));
        Assert.Equal(DenialReason.NotAuthenticated, CredentialVerifier.Verify(User(), new Credential(CredentialKind.AccessToken, "live", [], 5), Noon));
    }

    [Fact]
    public void Verify_UserThatDoesNotExist_RefusesEveryKind()
    {
        var deleted = User();
        deleted.Exists = false;

        Assert.Equal(DenialReason.NotAuthenticated, CredentialVerifier.Verify(deleted, ApiKey("live", (2, Live)), Now));
        Assert.Equal(DenialReason.NotAuthenticated, CredentialVerifier.Verify(deleted, new Credential(CredentialKind.ServiceToken, "svc", [], 0, Now), Now));
    }

    public static TheoryData<string, Credential, bool> WrongSecretCases => new()
    {
        { "live key, wrong hash: a guess", ApiKey("live", (2, Old)), true },
        { "live key, no hash for its version: a guess", ApiKey("live", (1, Live)), true },
        { "live key, right hash", ApiKey("live", (2, Live)), false },
        { "expired key, wrong hash: a stale client, not a guess", ApiKey("expired", (2, Old)), false },
        { "revoked key, wrong hash: a stale client, not a guess", ApiKey("revoked", (2, Old)), false },
        { "unknown key", ApiKey("unknown", (2, Old)), false },
        { "access token of an older generation", new Credential(CredentialKind.AccessToken, "live", [], 4), false },
    };

    [Theory]
    [MemberData(nameof(WrongSecretCases))]
    public void IsWrongSecret_CountsOnlyGuessesAtLiveKeys(string name, Credential credential, bool expected)
    {
        Assert.True(expected == CredentialVerifier.IsWrongSecret(User(), credential, Now), name);
    }

    public static TheoryData<string, Credential, bool> ExpiredKeyCases => new()
    {
        { "expired key, right hash", ApiKey("expired", (2, Live)), true },
        { "expired key, wrong hash", ApiKey("expired", (2, Old)), true },
        { "live key", ApiKey("live", (2, Live)), false },
        { "revoked key (revocation, not expiry)", ApiKey("revoked", (2, Live)), false },
        { "unknown key", ApiKey("unknown", (2, Live)), false },
        { "access token naming the expired key", new Credential(CredentialKind.AccessToken, "expired", [], 5), false },
    };

    [Theory]
    [MemberData(nameof(ExpiredKeyCases))]
    public void IsExpiredKey_NamesOnlyApiKeysPastTheirExpiry(string name, Credential credential, bool expected)
    {
        Assert.True(expected == CredentialVerifier.IsExpiredKey(User(), credential, Now), name);
    }

    private static Credential ApiKey(string keyId, params (int Version, byte[] Hash)[] hashes) =>
        new(CredentialKind.ApiKey, keyId, [.. hashes.Select(hash => new SecretHash(hash.Version, hash.Hash))], 0);

    private static UserState User() => new()
    {
        Exists = true,
        RevocationGeneration = 5,
        ExternalTokensRevokedAt = RevokedAt,
        ApiKeys = new(StringComparer.Ordinal)
        {
            ["live"] = new StoredApiKey { SecretHash = Live, HashKeyVersion = 2, ExpiresAt = Noon },
            ["expired"] = new StoredApiKey { SecretHash = Live, HashKeyVersion = 2, ExpiresAt = Now.AddTicks(-1) },
            ["revoked"] = new StoredApiKey { SecretHash = Live, HashKeyVersion = 2, Revoked = true },
        },
    };
}
