using System.Net;
using System.Text.Json;
using Bastion.Hosting;
using Bastion.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Security;

/// <summary>A whole silo on the Key Vault provider, reading a stand-in vault over HTTPS with the real <c>SecretClient</c>.</summary>
[Collection(SiloCollection.Name)]
public sealed class KeyVaultSiloTests(SiloFixture fixture)
{
    [Fact]
    public async Task Silo_OnKeyVault_ServesCompletions_ThenFailsClosedWhenTheVaultStaysAway()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        var options = new KeyVaultOptions
        {
            VaultUri = vault.VaultUri,
            DisableChallengeResourceVerification = true,
            RefreshInterval = TimeSpan.FromMinutes(5),
            MaxStaleness = TimeSpan.FromMinutes(30),
        };
        vault.AddBastionKeys();

        // Only the key provider runs on the fake clock; the rest of the silo keeps real time.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var silo = await StartSiloAsync(vault, new KeyVaultKeyProvider(vault.CreateClient(), options, time, NullLogger<KeyVaultKeyProvider>.Instance));

        Assert.IsType<KeyVaultKeyProvider>(silo.Services.GetRequiredService<IKeyProvider>());
        // Thrown inside a grain, the failure reaches the HTTP layer as itself, so it still maps to 503 keys-unavailable.
        var serializer = silo.Services.GetRequiredService<Orleans.Serialization.Serializer>();
        Assert.IsType<KeysUnavailableException>(serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(new KeysUnavailableException())));
        var apiKey = await silo.CreateUserWithKeyAsync("kv-" + Guid.NewGuid().ToString("N"), "user");
        using (var completion = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "Hello", max_tokens = 4 })))
        {
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        Assert.Equal(0, KeyProviderAge(silo));

        vault.Unreachable = true;
        time.Advance(options.MaxStaleness + TimeSpan.FromMinutes(1));
        // What the staleness alert reads (deploy/observability/alert-rules.yml): the refreshes since have all failed.
        Assert.Equal((options.MaxStaleness + TimeSpan.FromMinutes(1)).TotalSeconds, KeyProviderAge(silo));

        using var refused = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "Hello", max_tokens = 4 }));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        Assert.Equal("urn:bastion:problem:keys-unavailable", problem.RootElement.GetProperty("type").GetString());
        Assert.True(problem.RootElement.TryGetProperty("traceId", out _));
        using var ready = await silo.Http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }

    [Fact]
    public async Task HashingKeyRotation_KeysIssuedBeforeAndAfter_BothKeepWorking()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        var options = new KeyVaultOptions { VaultUri = vault.VaultUri, DisableChallengeResourceVerification = true, RefreshInterval = TimeSpan.FromMinutes(5) };
        vault.AddBastionKeys();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var provider = new KeyVaultKeyProvider(vault.CreateClient(), options, time, NullLogger<KeyVaultKeyProvider>.Instance);
        await using var silo = await StartSiloAsync(vault, provider);
        var before = await silo.CreateUserWithKeyAsync("rot-a-" + Guid.NewGuid().ToString("N"), "user");

        // A second hashing-key version, current once two refresh intervals have passed.
        vault.AddVersion(options.ApiKeyHashingKeySecret, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), 2, time.GetUtcNow());
        time.Advance(3 * options.RefreshInterval);
        await provider.RefreshAsync(CancellationToken.None);
        Assert.Equal(2, provider.CurrentApiKeyHashingKey.Version);

        // The bootstrap admin's key (hashed under version 1) still administers, and the new key is hashed under version 2.
        var after = await silo.CreateUserWithKeyAsync("rot-b-" + Guid.NewGuid().ToString("N"), "user");
        foreach (var key in new[] { before, after, silo.AdminKey })
        {
            using var me = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", key));
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        // A key whose secret is wrong under every version is still refused.
        await silo.AssertIdenticalUnauthorizedAsync([before[..^10] + (before[^10] == 'A' ? 'B' : 'A') + before[^9..]]);
    }

    [Fact]
    public async Task Start_VaultUnreachable_RefusesBeforeJoiningTheCluster()
    {
        await using var vault = await StandInKeyVault.StartAsync();
        vault.Unreachable = true;
        var options = new KeyVaultOptions { VaultUri = vault.VaultUri, DisableChallengeResourceVerification = true };
        var (database, directory) = await fixture.CreateDatabaseAsync();
        await using var app = await BastionApplication.BuildAsync(["--environment=Development"], builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Bastion"] = database.State,
                ["ConnectionStrings:BastionKeys"] = database.KeyStore,
                ["Bastion:Node:DataDirectory"] = directory,
                ["Bastion:Keys:Provider"] = "KeyVault",
                ["Bastion:Keys:KeyVault:VaultUri"] = vault.VaultUri.ToString(),
                ["Bastion:Keys:KeyVault:DisableChallengeResourceVerification"] = "true",
            });
            builder.Services.AddSingleton(new KeyVaultKeyProvider(vault.CreateClient(), options, TimeProvider.System, NullLogger<KeyVaultKeyProvider>.Instance));
        });

        var refused = await Assert.ThrowsAsync<StartupException>(() => app.StartAsync());

        Assert.Contains("Bastion:Keys:KeyVault:VaultUri", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Key Vault Secrets User", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "Bastion:Keys:KeyVault:VaultUri")]
    [InlineData("true", "Bastion:Keys:KeyVault:DisableChallengeResourceVerification")]
    public async Task Build_OutsideDevelopment_UsesKeyVaultAndRefusesUnsafeOptionsNamingTheSetting(string? disableVerification, string named)
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Bastion"] = database.State,
            ["ConnectionStrings:BastionKeys"] = database.KeyStore,
            ["Bastion:Node:DataDirectory"] = directory,
            ["Bastion:Node:ClusterId"] = "kv-" + Guid.NewGuid().ToString("N"),
        };
        if (disableVerification is not null)
        {
            settings["Bastion:Keys:KeyVault:VaultUri"] = "https://bastion-test.vault.azure.net/";
            settings["Bastion:Keys:KeyVault:DisableChallengeResourceVerification"] = disableVerification;
        }

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var app = await BastionApplication.BuildAsync(["--environment=Production"], builder => builder.Configuration.AddInMemoryCollection(settings));
        });

        Assert.Contains(named, refused.Message, StringComparison.Ordinal);
    }

    /// <summary>This silo's <c>bastion_key_provider_age_seconds</c>, read from its own meter.</summary>
    private static double KeyProviderAge(TestSilo silo)
    {
        var meter = silo.Services.GetRequiredService<Bastion.Diagnostics.BastionMetrics>().Meter;
        double? age = null;
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, listening) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "bastion_key_provider_age_seconds")
                {
                    listening.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, value, _, _) => age = value);
        listener.Start();
        listener.RecordObservableInstruments();
        return age ?? throw new InvalidOperationException("bastion_key_provider_age_seconds has no value.");
    }

    /// <summary>A whole silo whose keys come from <paramref name="provider"/>, reading <paramref name="vault"/>.</summary>
    private async Task<TestSilo> StartSiloAsync(StandInKeyVault vault, KeyVaultKeyProvider provider)
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        return await TestSilo.StartAsync(
            database,
            directory,
            new Dictionary<string, string?>
            {
                ["Bastion:Keys:Provider"] = "KeyVault",
                ["Bastion:Keys:KeyVault:VaultUri"] = vault.VaultUri.ToString(),
                ["Bastion:Keys:KeyVault:DisableChallengeResourceVerification"] = "true",
            },
            builder => builder.Services.AddSingleton(provider));
    }
}
