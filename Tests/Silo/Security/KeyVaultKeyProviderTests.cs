using System.Security.Cryptography;
using Bastion.Hosting;
using Bastion.Security;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Security;

/// <summary>The real <c>SecretClient</c> against a stand-in vault that speaks Key Vault's secrets protocol over HTTPS.</summary>
public sealed class KeyVaultKeyProviderTests : IAsyncLifetime
{
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromMinutes(5);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly KeyVaultOptions _options = new() { RefreshInterval = RefreshInterval, MaxStaleness = TimeSpan.FromMinutes(30), DisableChallengeResourceVerification = true };
    private StandInKeyVault _vault = null!;
    private byte[] _pseudonymKey = null!;
    private byte[] _kek1 = null!;

    public async Task InitializeAsync()
    {
        _vault = await StandInKeyVault.StartAsync();
        _options.VaultUri = _vault.VaultUri;
        var longAgo = _time.GetUtcNow().AddDays(-30);
        _pseudonymKey = RandomNumberGenerator.GetBytes(32);
        _kek1 = RandomNumberGenerator.GetBytes(32);
        _vault.AddVersion(_options.PseudonymKeySecret, Convert.ToBase64String(_pseudonymKey), 1, longAgo);
        _vault.AddVersion(_options.ApiKeyHashingKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, longAgo);
        _vault.AddVersion(_options.ApiKeyIdKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, longAgo);
        _vault.AddVersion(_options.ClusterAssertionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, longAgo);
        _vault.AddVersion(_options.AuditSealKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, longAgo);
        _vault.AddVersion(_options.SigningKeySecret, NewEcPem(), 1, longAgo);
        _vault.AddVersion(_options.KeyEncryptionKeySecret, Convert.ToBase64String(_kek1), 1, longAgo);
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    [Fact]
    public async Task Start_VaultWithEveryKey_LoadsThemAndIsReady()
    {
        // A retired (disabled) version is listed but never read or used.
        _vault.AddVersion(_options.KeyEncryptionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 7, _time.GetUtcNow().AddDays(-60), enabled: false);
        using var provider = CreateProvider();

        await provider.StartAsync(CancellationToken.None);
        await provider.StopAsync(CancellationToken.None);

        Assert.True(_vault.Challenges > 0); // The client authenticated by answering the vault's bearer challenge.
        Assert.Equal(_pseudonymKey, provider.PseudonymKey.ToArray());
        Assert.Equal(1, provider.CurrentApiKeyHashingKey.Version);
        Assert.Equal(1, provider.CurrentKek.Version);
        Assert.Equal(_kek1, provider.CurrentKek.Key);
        Assert.Null(provider.FindKek(7));
        Assert.Equal("bastion-signing-key-1", provider.SigningCredentials.Key.KeyId);
        Assert.Equal("ES256", provider.SigningCredentials.Algorithm);
        var (token, _) = Tokens(provider).Issue("pseudonym-kv-1", "key-1", 1);
        Assert.NotNull(await Tokens(provider).ValidateAsync(token));
        Assert.Equal(HealthStatus.Healthy, (await new KeyVaultHealthCheck(provider).CheckHealthAsync(new HealthCheckContext())).Status);
    }

    [Fact]
    public async Task Refresh_NewVersions_AreReadAtOnceButUsedOnlyAfterTwoRefreshIntervals()
    {
        using var provider = CreateProvider();
        await provider.RefreshAsync(CancellationToken.None);
        var (oldToken, _) = Tokens(provider).Issue("pseudonym-kv-2", "key-1", 1);

        var kek2 = RandomNumberGenerator.GetBytes(32);
        _vault.AddVersion(_options.KeyEncryptionKeySecret, Convert.ToBase64String(kek2), 2, _time.GetUtcNow());
        _vault.AddVersion(_options.KeyEncryptionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 3, _time.GetUtcNow());
        _vault.AddVersion(_options.SigningKeySecret, NewRsaPem(), 2, _time.GetUtcNow());
        _vault.AddVersion(_options.ApiKeyHashingKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 2, _time.GetUtcNow());
        _vault.AddVersion(_options.ApiKeyIdKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 2, _time.GetUtcNow());
        _vault.AddVersion(_options.ClusterAssertionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 2, _time.GetUtcNow());
        _time.Advance(RefreshInterval);
        await provider.RefreshAsync(CancellationToken.None);

        // Seen (so this silo can already decrypt and validate them), but not yet used for new writes.
        Assert.Equal(kek2, provider.FindKek(2)!.Key);
        Assert.NotNull(provider.FindKek(3));
        Assert.Equal(1, provider.CurrentKek.Version);
        Assert.Equal(1, provider.CurrentApiKeyHashingKey.Version);
        Assert.Equal(1, provider.CurrentApiKeyIdKey.Version);
        Assert.Equal(1, provider.CurrentClusterAssertionKey.Version);
        Assert.NotNull(provider.FindClusterAssertionKey(2));
        Assert.Equal([1, 2], provider.ApiKeyIdKeys.Select(key => key.Version).Order());
        Assert.Equal("bastion-signing-key-1", provider.SigningCredentials.Key.KeyId);
        Assert.Equal(2, provider.ValidationKeys.Count);

        _time.Advance(RefreshInterval);
        var reads = _vault.SecretReads;
        await provider.RefreshAsync(CancellationToken.None);

        Assert.Equal(reads, _vault.SecretReads); // Known versions come from the cache; only lists are re-read.
        Assert.Equal(3, provider.CurrentKek.Version);
        Assert.Equal(2, provider.CurrentApiKeyHashingKey.Version);
        Assert.Equal(2, provider.CurrentApiKeyIdKey.Version);
        Assert.Equal(2, provider.CurrentClusterAssertionKey.Version);
        Assert.Equal("bastion-signing-key-2", provider.SigningCredentials.Key.KeyId);
        Assert.Equal("RS256", provider.SigningCredentials.Algorithm);
        // Older versions keep decrypting and validating.
        Assert.Equal(_kek1, provider.FindKek(1)!.Key);
        Assert.Equal([1, 2], provider.ApiKeyHashingKeys.Select(key => key.Version).Order());
        Assert.NotNull(provider.FindClusterAssertionKey(1));
        Assert.NotNull(await Tokens(provider).ValidateAsync(oldToken));
        var (newToken, _) = Tokens(provider).Issue("pseudonym-kv-2", "key-1", 1);
        Assert.NotNull(await Tokens(provider).ValidateAsync(newToken));
    }

    [Fact]
    public async Task Start_ThenRefreshInterval_RereadsTheVaultInTheBackground()
    {
        using var provider = CreateProvider();
        await provider.StartAsync(CancellationToken.None);
        _vault.AddVersion(_options.KeyEncryptionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 2, _time.GetUtcNow());

        _time.Advance(RefreshInterval);
        // The refresh runs on the provider's own task; wait for it to finish (an event, not a duration).
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (provider.LastRefreshedAt != _time.GetUtcNow())
        {
            await Task.Delay(10, patience.Token);
        }

        await provider.StopAsync(CancellationToken.None);
        Assert.NotNull(provider.FindKek(2));
        Assert.Equal(1, provider.CurrentKek.Version);
    }

    [Fact]
    public async Task Refresh_SecondPseudonymKeyVersion_KeepsTheKeyReadAtStart()
    {
        using var provider = CreateProvider();
        await provider.RefreshAsync(CancellationToken.None);

        _vault.AddVersion(_options.PseudonymKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 2, _time.GetUtcNow());
        _time.Advance(3 * RefreshInterval);
        await provider.RefreshAsync(CancellationToken.None);

        Assert.Equal(_pseudonymKey, provider.PseudonymKey.ToArray());
    }

    [Fact]
    public async Task Start_VaultUnreachable_IsRefusedNamingTheVaultSetting()
    {
        _vault.Unreachable = true;
        using var provider = CreateProvider();

        var refused = await Assert.ThrowsAsync<StartupException>(() => provider.StartAsync(CancellationToken.None));

        Assert.Contains("Bastion:Keys:KeyVault:VaultUri", refused.Message, StringComparison.Ordinal);
        Assert.Contains("could not be reached", refused.Message, StringComparison.Ordinal);
        Assert.False(provider.IsAvailable);
        Assert.Equal(HealthStatus.Unhealthy, (await new KeyVaultHealthCheck(provider).CheckHealthAsync(new HealthCheckContext())).Status);
        Assert.Throws<KeysUnavailableException>(() => provider.CurrentKek);
    }

    [Fact]
    public async Task Start_EnabledVersionWithoutVersionTag_IsRefusedNamingTheSecretButNotItsValue()
    {
        var value = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        _vault.AddVersion(_options.KeyEncryptionKeySecret, value, new Dictionary<string, string>(), _time.GetUtcNow());
        using var provider = CreateProvider();

        var refused = await Assert.ThrowsAsync<StartupException>(() => provider.StartAsync(CancellationToken.None));

        Assert.Contains("'bastion-kek'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("bastion-version", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(value, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refresh_VaultGoneDuringOperation_ServesCachedKeysUntilMaxStalenessThenFailsClosed()
    {
        using var provider = CreateProvider();
        await provider.RefreshAsync(CancellationToken.None);
        _vault.Unreachable = true;

        _time.Advance(TimeSpan.FromMinutes(29));
        await Assert.ThrowsAnyAsync<Azure.RequestFailedException>(() => provider.RefreshAsync(CancellationToken.None));
        Assert.Equal(_kek1, provider.FindKek(1)!.Key);
        Assert.True(provider.IsAvailable);

        _time.Advance(TimeSpan.FromMinutes(2));
        await Assert.ThrowsAnyAsync<Azure.RequestFailedException>(() => provider.RefreshAsync(CancellationToken.None));

        Assert.Throws<KeysUnavailableException>(() => provider.CurrentKek);
        Assert.Throws<KeysUnavailableException>(() => provider.FindKek(1));
        Assert.Throws<KeysUnavailableException>(() => provider.SigningCredentials);
        Assert.Throws<KeysUnavailableException>(() => provider.PseudonymKey.Length);

        // Silos keep asserting their calls to each other (membership probes included) with the cached keys.
        Assert.Equal(32, provider.CurrentClusterAssertionKey.Key.Length);
        Assert.NotNull(provider.FindClusterAssertionKey(1));
        Assert.Equal(HealthStatus.Unhealthy, (await new KeyVaultHealthCheck(provider).CheckHealthAsync(new HealthCheckContext())).Status);

        // The vault comes back: the next refresh makes the keys usable again.
        _vault.Unreachable = false;
        await provider.RefreshAsync(CancellationToken.None);
        Assert.Equal(1, provider.CurrentKek.Version);
    }

    [Fact]
    public void Options_DisablingChallengeResourceVerificationOutsideDevelopment_AreRefusedNamingTheSetting()
    {
        Assert.Empty(_options.Problems(isDevelopment: true));

        var problems = _options.Problems(isDevelopment: false).ToList();

        Assert.Contains(problems, problem => problem.Contains("Bastion:Keys:KeyVault:DisableChallengeResourceVerification", StringComparison.Ordinal));
        Assert.Throws<OptionsValidationException>(() =>
            new Microsoft.Extensions.DependencyInjection.ServiceCollection().AddKeyVaultKeys(_options, isDevelopment: false));
    }

    [Fact]
    public void Options_WithoutVaultUri_AreRefusedNamingTheSetting()
    {
        var problems = new KeyVaultOptions().Problems(isDevelopment: false).ToList();

        Assert.Equal(["Bastion:Keys:KeyVault:VaultUri must be the vault's https URI (e.g. https://my-vault.vault.azure.net/)."], problems);
    }

    private KeyVaultKeyProvider CreateProvider() => new(_vault.CreateClient(), _options, _time, NullLogger<KeyVaultKeyProvider>.Instance);

    private AccessTokens Tokens(IKeyProvider keys) => new(keys, Options.Create(new TokenOptions()), _time);

    private static string NewEcPem()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return key.ExportPkcs8PrivateKeyPem();
    }

    private static string NewRsaPem()
    {
        using var key = RSA.Create(2048);
        return key.ExportPkcs8PrivateKeyPem();
    }
}
