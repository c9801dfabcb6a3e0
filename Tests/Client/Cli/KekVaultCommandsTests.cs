using System.Security.Cryptography;
using Azure.Security.KeyVault.Secrets;
using Bastion.Security;
using Bastion.Tests.Silo;
using Bastion.Tests.Silo.Cluster;
using Bastion.Tests.Silo.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Client.Cli;

/// <summary>
/// <c>bastion keys kek rotate | retire --vault-uri</c>: the CLI's real <see cref="SecretClient"/> writes to the HTTPS stand-in
/// vault that a silo on the Key Vault provider reads, so the whole production rotation runs: add a version, let the silos
/// switch to it, re-wrap, then disable the old version, refused while data keys still use it.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class KekVaultCommandsTests(SiloFixture fixture)
{
    [Fact]
    public async Task Rotate_AddsTheNextNumber_AndRetireDisablesTheVersionOnlyOnceNothingUsesIt()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        var options = new KeyVaultOptions
        {
            VaultUri = vault.VaultUri,
            DisableChallengeResourceVerification = true,
            RefreshInterval = TimeSpan.FromMinutes(5),
            MaxStaleness = TimeSpan.FromMinutes(60),
        };
        vault.AddBastionKeys();
        // A disabled version still holds its number: the next one must be 3.
        vault.AddVersion(options.KeyEncryptionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 2, DateTimeOffset.UtcNow.AddDays(-1), enabled: false);

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var provider = new KeyVaultKeyProvider(vault.CreateClient(), options, time, NullLogger<KeyVaultKeyProvider>.Instance);
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var operator_ = ServiceKeyPair.Create(directory, "svc-kek-vault");
        var settings = ServiceKeyPair.Settings(operator_);
        settings["Bastion:Keys:Provider"] = "KeyVault";
        settings["Bastion:Keys:KeyVault:VaultUri"] = vault.VaultUri.ToString();
        settings["Bastion:Keys:KeyVault:DisableChallengeResourceVerification"] = "true";
        await using var silo = await TestSilo.StartAsync(database, directory, settings, builder => builder.Services.AddSingleton(provider));
        await silo.CreateUserWithKeyAsync(operator_.Name, "admin");
        await using var host = await ServiceClientHost.StartAsync(silo, operator_);
        Assert.Equal(0, (await RunAsync(host, vault, "users", "create", "kek-erin", "--role", "user")).Code);
        var client = vault.CreateClient();

        // Rotate: a new KEK version 3 (one above the disabled 2), and a signing key version 2; no key material printed.
        var rotated = await RunAsync(null, vault, "keys", "kek", "rotate", "--vault-uri", vault.VaultUri.ToString());
        Assert.Equal(0, rotated.Code);
        Assert.Contains("KEK version 3 added to bastion-kek", rotated.Output, StringComparison.Ordinal);
        var kek3 = await VersionAsync(client, options.KeyEncryptionKeySecret, "3");
        Assert.True(kek3.Enabled);
        var kek3Value = (await client.GetSecretAsync(options.KeyEncryptionKeySecret, kek3.Version)).Value.Value;
        Assert.Equal(32, Convert.FromBase64String(kek3Value).Length);
        Assert.DoesNotContain(kek3Value, rotated.Output + rotated.Errors, StringComparison.Ordinal);
        var signed = await RunAsync(null, vault, "keys", "kek", "rotate", "--vault-uri", vault.VaultUri.ToString(), "--signing");
        Assert.Equal(0, signed.Code);
        Assert.Contains("signing key version 2 added to bastion-signing-key", signed.Output, StringComparison.Ordinal);
        var signing2 = await VersionAsync(client, options.SigningKeySecret, "2");
        using (var parsed = ECDsa.Create())
        {
            parsed.ImportFromPem((await client.GetSecretAsync(options.SigningKeySecret, signing2.Version)).Value.Value);
            Assert.Equal(256, parsed.KeySize);
        }

        Assert.NotEqual(0, (await RunAsync(null, vault, "keys", "kek", "rotate", "--vault-uri", "http://localhost/")).Code);
        var missing = await RunAsync(null, vault, "keys", "kek", "rotate", "--vault-uri", vault.VaultUri.ToString(), "--secret", "no-such-secret");
        Assert.Equal(1, missing.Code);
        Assert.Contains("no secret 'no-such-secret'", missing.Errors, StringComparison.Ordinal);

        // The silos read version 3 and, once its rollout delay has passed, wrap new keys with it.
        time.Advance(TimeSpan.FromMinutes(15));
        await provider.RefreshAsync(CancellationToken.None);
        Assert.Equal(3, provider.CurrentKek.Version);

        var inUse = await RunAsync(host, vault, "keys", "kek", "retire", "1", "--vault-uri", vault.VaultUri.ToString());
        Assert.Equal(2, inUse.Code);
        Assert.Contains("still wraps", inUse.Errors, StringComparison.Ordinal);
        Assert.True((await VersionAsync(client, options.KeyEncryptionKeySecret, "1")).Enabled);
        var current = await RunAsync(host, vault, "keys", "kek", "retire", "3", "--vault-uri", vault.VaultUri.ToString());
        Assert.Equal(2, current.Code);
        Assert.True((await VersionAsync(client, options.KeyEncryptionKeySecret, "3")).Enabled);

        Assert.Equal(0, (await RunAsync(host, vault, "keys", "kek", "rewrap", "--wait")).Code);
        var withoutVault = await RunAsync(host, vault, "keys", "kek", "retire", "1");
        Assert.Equal(2, withoutVault.Code);
        Assert.Contains("--vault-uri", withoutVault.Errors, StringComparison.Ordinal);

        var retired = await RunAsync(host, vault, "keys", "kek", "retire", "1", "--vault-uri", vault.VaultUri.ToString());
        Assert.Equal(0, retired.Code);
        Assert.Contains("KEK version 1 disabled in bastion-kek", retired.Output, StringComparison.Ordinal);
        Assert.False((await VersionAsync(client, options.KeyEncryptionKeySecret, "1")).Enabled);
        Assert.False((await VersionAsync(client, options.KeyEncryptionKeySecret, "2")).Enabled);
        Assert.True((await VersionAsync(client, options.KeyEncryptionKeySecret, "3")).Enabled);

        // The silos drop it at their next refresh; a repeat finds it already disabled. Everything still decrypts.
        await provider.RefreshAsync(CancellationToken.None);
        Assert.Equal([3], provider.KekVersions);
        var repeated = await RunAsync(host, vault, "keys", "kek", "retire", "1", "--vault-uri", vault.VaultUri.ToString());
        Assert.Equal(0, repeated.Code);
        Assert.Contains("already disabled", repeated.Output, StringComparison.Ordinal);
        var shown = await RunAsync(host, vault, "users", "show", "kek-erin");
        Assert.Equal(0, shown.Code);
        Assert.Contains("roles: user", shown.Output, StringComparison.Ordinal);

        vault.Unreachable = true;
        var unreachable = await RunAsync(null, vault, "keys", "kek", "rotate", "--vault-uri", vault.VaultUri.ToString());
        Assert.Equal(1, unreachable.Code);
        Assert.Contains("Key Vault could not be reached", unreachable.Errors, StringComparison.Ordinal);
    }

    private static async Task<SecretProperties> VersionAsync(SecretClient client, string secret, string number)
    {
        var found = new List<SecretProperties>();
        await foreach (var properties in client.GetPropertiesOfSecretVersionsAsync(secret))
        {
            if (properties.Tags.TryGetValue("bastion-version", out var tag) && tag == number)
            {
                found.Add(properties);
            }
        }

        return Assert.Single(found);
    }

    private static Task<(int Code, string Output, string Errors)> RunAsync(ServiceClientHost? host, StandInKeyVault vault, params string[] args) =>
        KekCommandsTests.RunAsync(host, uri =>
        {
            Assert.Equal(vault.VaultUri, uri);
            return vault.CreateClient();
        }, args);
}
