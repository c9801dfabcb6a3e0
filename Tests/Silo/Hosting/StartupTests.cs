using Bastion.Hosting;
using Bastion.Inference;
using Bastion.Tests.Silo.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>A silo that cannot serve correctly refuses to start, and says which setting or command fixes it.</summary>
[Collection("Postgres")]
public sealed class StartupTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Build_SchemaBehind_RefusesAndNamesTheMigrateCommand()
    {
        var database = await postgres.CreateDatabaseAsync();
        var keyStore = await postgres.CreateMigratedKeyStoreAsync();

        var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync("Development", new()
        {
            ["ConnectionStrings:Bastion"] = database.RuntimeConnectionString,
            ["ConnectionStrings:BastionKeys"] = keyStore.RuntimeConnectionString,
        }));

        Assert.Contains("dotnet run --project Silo -- migrate", refused.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectionStrings:Bastion:", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_KeyStoreBehind_IsRefusedLikeTheStateSchema()
    {
        var database = await postgres.CreateMigratedDatabaseAsync();
        var keyStore = await postgres.CreateDatabaseAsync();

        var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync("Production", new()
        {
            ["ConnectionStrings:Bastion"] = database.RuntimeConnectionString,
            ["ConnectionStrings:BastionKeys"] = keyStore.OwnerConnectionString,
        }));

        Assert.Contains("ConnectionStrings:BastionKeys", refused.Message, StringComparison.Ordinal);
        Assert.Contains("key store", refused.Message, StringComparison.Ordinal);
        Assert.Contains("dotnet run --project Silo -- migrate", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_OutsideDevelopmentWithoutKeyStore_NamesTheKeyStoreConnectionString()
    {
        var database = await postgres.CreateMigratedDatabaseAsync();

        var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync("Production", new() { ["ConnectionStrings:Bastion"] = database.RuntimeConnectionString }));

        Assert.Contains("ConnectionStrings:BastionKeys", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(database.RuntimeConnectionString, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_OutsideDevelopmentWithoutDatabase_NamesTheConnectionString()
    {
        var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync("Production", []));

        Assert.Contains("ConnectionStrings:Bastion", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Bastion", "Disable")]
    [InlineData("Bastion", "Prefer")]
    [InlineData("Bastion", "Require")]
    [InlineData("BastionKeys", "Disable")]
    [InlineData("BastionKeys", "Prefer")]
    [InlineData("BastionKeys", "Require")]
    public async Task Build_OutsideDevelopmentWithoutServerVerification_IsRefusedNamingTheSetting(string connectionString, string sslMode)
    {
        var settings = await MigratedDatabasesAsync();
        var key = "ConnectionStrings:" + connectionString;
        var unverified = new NpgsqlConnectionStringBuilder(settings[key]) { SslMode = Enum.Parse<SslMode>(sslMode), RootCertificate = null };
        settings[key] = unverified.ConnectionString;

        var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync("Production", settings));

        Assert.StartsWith($"{key} has SSL Mode={sslMode};", refused.Message, StringComparison.Ordinal);
        Assert.Contains("SSL Mode=VerifyFull", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(unverified.Password!, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Bastion:Node:Roles:0", "gardener", "Bastion:Node:Roles")]
    [InlineData("Bastion:Node:SiloPort", "70000", "Bastion:Node")]
    [InlineData("Bastion:Http:Port", "-1", "Bastion:Http")]
    [InlineData("Bastion:Http:MaxRequestBodyBytes", "1", "Bastion:Http")]
    [InlineData("Bastion:Telemetry:MetricsPort", "70000", "Bastion:Telemetry")]
    public async Task Build_InvalidSetting_NamesTheSetting(string key, string value, string named)
    {
        var settings = await MigratedDatabasesAsync();
        settings[key] = value;

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => BuildAsync("Development", settings));

        Assert.Contains(named, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Bastion:Anomaly:Throttle:Factor", "2", "Bastion:Anomaly:Throttle")]
    [InlineData("Bastion:Anomaly:PromptEnumeration:Threshold", "1", "Bastion:Anomaly:PromptEnumeration")]
    [InlineData("Bastion:Anomaly:Roles:user:PromptEnumeration", "Ban", "Bastion:Anomaly:Roles:user:PromptEnumeration")]
    [InlineData("Bastion:Anomaly:RefusalStorms:Threshold", "10", "RefusalStorms")]
    [InlineData("Bastion:Guards:Input:Roles:user:PromptTokenCap", "0", "Bastion:Guards:Input:Roles:user:PromptTokenCap")]
    [InlineData("Bastion:Guards:Input:Roles:user:Modes:injection", "Maybe", "Bastion:Guards:Input:Roles:user:Modes:injection")]
    [InlineData("Bastion:Guards:Input:Roles:root:PromptTokenCap", "10", "Bastion:Guards:Input:Roles:root")]
    [InlineData("Bastion:Guards:Input:InjectionRules:Rules:0:Pattern", "(a)\\1", "Bastion:Guards:Input:InjectionRules:Rules:0")]
    [InlineData("Bastion:Guards:Input:Injection:Threshold", "1", "Injection")]
    [InlineData("Bastion:Guards:Output:Mode", "Shout", "Bastion:Guards:Output:Mode")]
    [InlineData("Bastion:Guards:Output:Detectors:0", "tarot", "Bastion:Guards:Output:Detectors")]
    public async Task Start_InvalidAnomalyOrGuardSetting_IsRefusedAndNamesTheSetting(string key, string value, string named)
    {
        var settings = await MigratedDatabasesAsync();
        settings[key] = value;

        // Validated before the silo joins the cluster: a typo must not leave a default silently in force.
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => BuildAsync("Development", settings, start: true));

        Assert.Contains(named, refused.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_ModelNotMatchingItsPinnedDigest_IsRefusedAndNamesTheSetting()
    {
        var settings = await MigratedDatabasesAsync();
        var modelDirectory = Path.Combine(Path.GetTempPath(), "bastion-model-" + Guid.NewGuid().ToString("N"));
        Gpt2ModelBuilder.WriteModelDirectory(modelDirectory, ModelShape.Tiny, seed: 7);
        try
        {
            settings["Bastion:Inference:ExecutionProvider"] = "Cpu";
            settings["Bastion:Inference:Models:0:Name"] = "tampered";
            settings["Bastion:Inference:Models:0:Directory"] = modelDirectory;
            settings["Bastion:Inference:Models:0:Sha256"] = InferenceRegistration.DefaultModelSha256;
            var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync("Development", settings, start: true));

            Assert.Contains("Bastion:Inference:Models:0:Sha256", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(modelDirectory, recursive: true);
        }
    }

    private async Task<Dictionary<string, string?>> MigratedDatabasesAsync() => new()
    {
        ["ConnectionStrings:Bastion"] = (await postgres.CreateMigratedDatabaseAsync()).RuntimeConnectionString,
        ["ConnectionStrings:BastionKeys"] = (await postgres.CreateMigratedKeyStoreAsync()).RuntimeConnectionString,
    };

    [Theory]
    [InlineData("generation.json", "{\"temperature\": 9}", "generation.json is invalid")]
    [InlineData("chat_template.json", "{\"roles\": {}}", "chat_template.json is invalid")]
    [InlineData("generation.json", null, "generation.json is missing")]
    public async Task Start_ModelDirectoryWithABadFile_IsRefusedAndNamesTheSettingAndTheFile(string file, string? content, string named)
    {
        var modelDirectory = Path.Combine(Path.GetTempPath(), "bastion-model-" + Guid.NewGuid().ToString("N"));
        Gpt2ModelBuilder.WriteModelDirectory(modelDirectory, ModelShape.Tiny);
        if (content is null)
        {
            File.Delete(Path.Combine(modelDirectory, file));
        }
        else
        {
            await File.WriteAllTextAsync(Path.Combine(modelDirectory, file), content);
        }

        try
        {
            var settings = await MigratedDatabasesAsync();
            var refused = await Assert.ThrowsAsync<StartupException>(() => BuildAsync("Development", new(settings)
            {
                ["Bastion:Inference:ExecutionProvider"] = "Cpu",
                ["Bastion:Inference:Models:0:Name"] = "broken",
                ["Bastion:Inference:Models:0:Directory"] = modelDirectory,
                ["Bastion:Inference:Models:0:Sha256"] = InferenceRegistration.DefaultModelSha256,
            }, start: true));

            Assert.Contains("Bastion:Inference:Models:0:Directory", refused.Message, StringComparison.Ordinal);
            Assert.Contains(named, refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(modelDirectory, recursive: true);
        }
    }

    private static async Task BuildAsync(string environment, Dictionary<string, string?> settings, bool start = false)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), "bastion-startup-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var app = await BastionApplication.BuildAsync([$"--environment={environment}"], builder =>
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(settings) { ["Bastion:Node:DataDirectory"] = dataDirectory }));
            if (start)
            {
                await app.StartAsync();
                await app.StopAsync();
            }
        }
        finally
        {
            if (Directory.Exists(dataDirectory))
            {
                Directory.Delete(dataDirectory, recursive: true);
            }
        }
    }
}
