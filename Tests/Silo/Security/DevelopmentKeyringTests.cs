using System.Text.Json;
using Bastion.Security;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Security;

/// <summary>Signing keys rotate by kid: the newest signs, the ones before it still validate. Every purpose has its own key.</summary>
public sealed class DevelopmentKeyringTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-keyring-tests-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 12, 0, 0, TimeSpan.Zero));

    private string KeyringPath => Path.Combine(_directory, "keyring.json");

    private AccessTokens Tokens(IKeyProvider keys) => new(keys, Options.Create(new TokenOptions()), _time);

    [Fact]
    public async Task TokenSignedByThePreviousKey_StillValidates_AfterRotation()
    {
        using var before = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);
        var (oldToken, _) = Tokens(before).Issue("pseudonym-1", "key-1", 1);

        _time.Advance(TimeSpan.FromMinutes(1));
        DevelopmentKeyring.AddSigningKey(KeyringPath, _time);
        using var after = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);
        var (newToken, _) = Tokens(after).Issue("pseudonym-1", "key-1", 1);

        Assert.Equal(2, after.ValidationKeys.Count);
        Assert.NotEqual(before.SigningCredentials.Key.KeyId, after.SigningCredentials.Key.KeyId);
        Assert.Equal(before.SigningCredentials.Key.KeyId, after.ValidationKeys[1].KeyId);
        Assert.NotNull(await Tokens(after).ValidateAsync(oldToken));
        Assert.NotNull(await Tokens(after).ValidateAsync(newToken));
        Assert.Null(await Tokens(before).ValidateAsync(newToken));
    }

    [Fact]
    public async Task TokenWhoseKidIsUnknown_IsRefused()
    {
        using var ours = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);
        using var theirs = DevelopmentKeyring.LoadOrCreate(Path.Combine(_directory, "other.json"), _time);
        var (foreignToken, _) = Tokens(theirs).Issue("pseudonym-1", "key-1", 1);
        var ourKey = ((Microsoft.IdentityModel.Tokens.ECDsaSecurityKey)ours.SigningCredentials.Key).ECDsa;
        var now = _time.GetUtcNow().ToUnixTimeSeconds();

        Assert.Null(await Tokens(ours).ValidateAsync(foreignToken));
        Assert.Null(await Tokens(ours).ValidateAsync(ForgedToken.Valid("retired-or-invented", now).SignEs256(ourKey)));
        Assert.NotNull(await Tokens(ours).ValidateAsync(ForgedToken.Valid(ours.SigningCredentials.Key.KeyId, now).SignEs256(ourKey)));
    }

    [Fact]
    public async Task SingleKeyFileFromBeforeRotation_StillLoads_AndMigratesOnRotation()
    {
        using (var original = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time))
        {
            // Rewrite the new file in the first, single-key format.
            var file = JsonSerializer.Deserialize(File.ReadAllText(KeyringPath), KeyringJsonContext.Default.KeyringFile)!;
            var legacy = file with { SigningKeyId = "legacy", SigningKey = file.SigningKeys![0].Key, SigningKeys = null };
            File.WriteAllText(KeyringPath, JsonSerializer.Serialize(legacy, KeyringJsonContext.Default.KeyringFile));
        }

        Assert.Contains("\"signing_key_id\"", File.ReadAllText(KeyringPath), StringComparison.Ordinal);
        using var loaded = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);
        var (token, _) = Tokens(loaded).Issue("pseudonym-1", "key-1", 1);
        Assert.Equal("legacy", loaded.SigningCredentials.Key.KeyId);

        DevelopmentKeyring.AddSigningKey(KeyringPath, _time);
        using var rotated = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);

        Assert.DoesNotContain("\"signing_key_id\"", File.ReadAllText(KeyringPath), StringComparison.Ordinal);
        Assert.NotEqual("legacy", rotated.SigningCredentials.Key.KeyId);
        Assert.NotNull(await Tokens(rotated).ValidateAsync(token));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyringPath));
        }
    }

    [Fact]
    public void KeyringWithoutKek_GetsOneOnLoad_KeptAcrossLoads_AndStaysPrivate()
    {
        using (DevelopmentKeyring.LoadOrCreate(KeyringPath, _time))
        {
            var file = JsonSerializer.Deserialize(File.ReadAllText(KeyringPath), KeyringJsonContext.Default.KeyringFile)!;
            File.WriteAllText(KeyringPath, JsonSerializer.Serialize(file with { KeyEncryptionKeys = null }, KeyringJsonContext.Default.KeyringFile));
        }

        Assert.DoesNotContain("\"key_encryption_keys\"", File.ReadAllText(KeyringPath), StringComparison.Ordinal);
        using var upgraded = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);
        using var reloaded = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);

        Assert.Equal(32, upgraded.CurrentKek.Key.Length);
        Assert.Equal(upgraded.CurrentKek.Key, reloaded.CurrentKek.Key);
        Assert.Equal(upgraded.CurrentKek.Key, reloaded.FindKek(upgraded.CurrentKek.Version)!.Key);
        Assert.Null(reloaded.FindKek(upgraded.CurrentKek.Version + 1));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyringPath));
        }
    }

    [Fact]
    public void KeyringWithoutKek_UpgradedBySeveralSilosAtOnce_EveryoneUsesTheKekOnDisk()
    {
        using (DevelopmentKeyring.LoadOrCreate(KeyringPath, _time))
        {
            var file = JsonSerializer.Deserialize(File.ReadAllText(KeyringPath), KeyringJsonContext.Default.KeyringFile)!;
            File.WriteAllText(KeyringPath, JsonSerializer.Serialize(file with { KeyEncryptionKeys = null }, KeyringJsonContext.Default.KeyringFile));
        }

        var keyrings = new DevelopmentKeyring[8];
        Parallel.For(0, keyrings.Length, i => keyrings[i] = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time));
        using var onDisk = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);

        Assert.All(keyrings, keyring => Assert.Equal(onDisk.CurrentKek.Key, keyring.CurrentKek.Key));
        foreach (var keyring in keyrings)
        {
            keyring.Dispose();
        }
    }

    [Fact]
    public void KeyringFromBeforeKeysWereSplit_GetsAKeyPerPurpose_AndKeepsItsHashingKeyAsVersion1()
    {
        var pseudonymKey = Enumerable.Repeat((byte)7, 32).ToArray();
        var hashingKey = Enumerable.Repeat((byte)8, 32).ToArray();
        using (DevelopmentKeyring.LoadOrCreate(KeyringPath, _time))
        {
            // The format before this change: one hashing key, no key-id or cluster-assertion keys.
            var file = JsonSerializer.Deserialize(File.ReadAllText(KeyringPath), KeyringJsonContext.Default.KeyringFile)!;
            var old = file with
            {
                PseudonymKey = Convert.ToBase64String(pseudonymKey),
                ApiKeyHashingKey = Convert.ToBase64String(hashingKey),
                ApiKeyHashingKeys = null,
                ApiKeyIdKeys = null,
                ClusterAssertionKeys = null,
            };
            File.WriteAllText(KeyringPath, JsonSerializer.Serialize(old, KeyringJsonContext.Default.KeyringFile));
        }

        using var upgraded = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);
        using var reloaded = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);

        Assert.Equal(pseudonymKey, upgraded.PseudonymKey.ToArray());
        Assert.Equal(new VersionedSecret(1, hashingKey).ToString(), upgraded.CurrentApiKeyHashingKey.ToString());
        Assert.Equal(hashingKey, upgraded.CurrentApiKeyHashingKey.Key);
        byte[][] purposes = [pseudonymKey, hashingKey, upgraded.CurrentApiKeyIdKey.Key, upgraded.CurrentClusterAssertionKey.Key, upgraded.CurrentKek.Key];
        Assert.Equal(purposes.Length, purposes.Select(Convert.ToBase64String).Distinct().Count());
        Assert.Equal(upgraded.CurrentApiKeyIdKey.Key, reloaded.CurrentApiKeyIdKey.Key);
        Assert.Equal(upgraded.CurrentClusterAssertionKey.Key, reloaded.FindClusterAssertionKey(1)!.Key);
        Assert.Null(reloaded.FindClusterAssertionKey(2));
    }

    [Fact]
    public void AddApiKeyHashingKey_NextLoadHashesWithIt_AndEveryEarlierVersionStays()
    {
        using var before = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);

        Assert.Equal(2, DevelopmentKeyring.AddApiKeyHashingKey(KeyringPath));
        using var after = DevelopmentKeyring.LoadOrCreate(KeyringPath, _time);

        Assert.Equal(1, before.CurrentApiKeyHashingKey.Version);
        Assert.Equal(2, after.CurrentApiKeyHashingKey.Version);
        Assert.Equal([1, 2], after.ApiKeyHashingKeys.Select(key => key.Version));
        Assert.Equal(before.CurrentApiKeyHashingKey.Key, after.ApiKeyHashingKeys[0].Key);
        Assert.NotEqual(before.CurrentApiKeyHashingKey.Key, after.CurrentApiKeyHashingKey.Key);
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
