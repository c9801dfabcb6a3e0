using System.Net;
using System.Runtime.Versioning;
using System.Text.Json;
using Bastion.Hosting;
using Microsoft.Extensions.Configuration;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// The bootstrap admin's key file: mode 0600, never written through a link planted at its path, and
/// its creation in the audit trail.
/// </summary>
[Collection(SiloCollection.Name)]
[SupportedOSPlatform("linux")]
public sealed class BootstrapAdminTests(SiloFixture fixture)
{
    private const string Planted = "planted by someone else\n";

    [Fact]
    public async Task Start_FreshService_WritesTheKeyFileOwnerOnly_AndAuditsTheBootstrap_ThenARestartWritesNoKeyFile()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var keyFile = Path.Combine(directory, "admin-api-key");
        await using (var silo = await TestSilo.StartAsync(database, directory))
        {
            await AssertBootstrappedAsync(silo, keyFile);
        }

        // Once per service: a restart touches no key file, so one that a silo starting beside it from the
        // same data directory is writing (or a crash left) neither stops it nor is touched by it.
        await File.WriteAllTextAsync(keyFile + ".pending", Planted);
        var written = File.GetLastWriteTimeUtc(keyFile);
        await using (await TestSilo.StartAsync(database, directory))
        {
            Assert.Equal(Planted, await File.ReadAllTextAsync(keyFile + ".pending"));
            Assert.Equal(written, File.GetLastWriteTimeUtc(keyFile));
        }
    }

    private static async Task AssertBootstrappedAsync(TestSilo silo, string keyFile)
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        Assert.False(Path.Exists(keyFile + ".pending"));

        // The admin's own next action names them as its actor: the bootstrap record must name the same user as its target.
        var id = "bootstrap-audit-" + Guid.NewGuid().ToString("N");
        using (var created = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", silo.AdminKey, new { id, roles = new[] { "user" } })))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        using var audit = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/admin/audit?limit=100", silo.AdminKey));
        using var json = JsonDocument.Parse(await audit.Content.ReadAsStringAsync());
        var entries = json.RootElement.GetProperty("data").EnumerateArray().ToList();
        var adminPseudonym = Assert.Single(entries, e => e.GetProperty("action").GetString() == "user.create").GetProperty("actor").GetString();
        var bootstrap = Assert.Single(entries, e => e.GetProperty("action").GetString() == "admin.bootstrap");
        Assert.Equal("bootstrap", bootstrap.GetProperty("actor").GetString());
        Assert.Equal(adminPseudonym, bootstrap.GetProperty("target").GetString());
        Assert.Equal("201", bootstrap.GetProperty("outcome").GetString());
        Assert.DoesNotContain(silo.AdminKey, json.RootElement.GetRawText(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(".pending", true)]
    [InlineData(".pending", false)]
    [InlineData("", true)]
    [InlineData("", false)]
    public async Task Start_SymlinkAtTheKeyPath_IsRefused_AndNothingIsWrittenThroughIt(string suffix, bool targetExists)
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var keyFile = Path.Combine(directory, "admin-api-key");
        var target = Path.Combine(directory, "elsewhere");
        if (targetExists)
        {
            await File.WriteAllTextAsync(target, Planted);
        }

        File.CreateSymbolicLink(keyFile + suffix, target);
        await using var app = await BastionApplication.BuildAsync(["--environment=Development"], builder =>
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Bastion"] = database.State,
                ["ConnectionStrings:BastionKeys"] = database.KeyStore,
                ["Bastion:Node:DataDirectory"] = directory,
                ["Bastion:Inference:IntraOpThreads"] = "1",
                ["Bastion:Bootstrap:KeyFile"] = keyFile,
                ["Logging:LogLevel:Default"] = "Warning",
            }));

        try
        {
            var refused = await Assert.ThrowsAsync<StartupException>(() => app.StartAsync());

            Assert.Contains("Bastion:Bootstrap:KeyFile", refused.Message, StringComparison.Ordinal);
            Assert.Contains(keyFile + suffix, refused.Message, StringComparison.Ordinal);
            Assert.Contains("symbolic link", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            await app.StopAsync();
        }

        Assert.Equal(target, new FileInfo(keyFile + suffix).LinkTarget);
        if (targetExists)
        {
            Assert.Equal(Planted, await File.ReadAllTextAsync(target));
        }
        else
        {
            Assert.False(Path.Exists(target));
        }
    }
}
