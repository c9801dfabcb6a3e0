using System.Net;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>Two silos of one cluster, started at the same moment on a fresh database.</summary>
[Collection(SiloCollection.Name)]
public sealed class ClusterStartupTests(SiloFixture fixture)
{
    [Fact]
    public async Task TwoSilos_StartingTogether_BootstrapExactlyOneAdminWhoseKeyWorksOnBoth()
    {
        var (database, firstDirectory) = await fixture.CreateDatabaseAsync();
        var secondDirectory = firstDirectory + "-second";
        Directory.CreateDirectory(secondDirectory);
        var shared = new Dictionary<string, string?>
        {
            ["Bastion:Node:ClusterId"] = "test-" + Guid.NewGuid().ToString("N"),
            ["Bastion:Keys:KeyringPath"] = Path.Combine(firstDirectory, "shared-keyring.json"),
        };
        var starting = new[] { TestSilo.StartAsync(database, firstDirectory, shared), TestSilo.StartAsync(database, secondDirectory, shared) };

        var silos = await Task.WhenAll(starting);
        try
        {
            // One cluster, not two single-silo clusters that happen to share a database.
            var activeSeen = silos.Max(s => s.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active));
            Assert.Equal(2, activeSeen);
            var keyFiles = silos.Select(s => Path.Combine(s.DataDirectory, "admin-api-key")).Where(File.Exists).ToList();
            var adminKey = (await File.ReadAllTextAsync(Assert.Single(keyFiles))).Trim();
            foreach (var silo in silos)
            {
                using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models", adminKey));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }
        finally
        {
            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
        }
    }
}
