using System.Net;
using System.Text.Json;
using Bastion.Security;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// "Never more than N" across a real three-silo cluster: concurrent clients on every silo, and a silo
/// stopped without warning while the window is open.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class ClusterLimitTests(SiloFixture fixture, ITestOutputHelper output)
{
    private const int Limit = 12;

    [Fact]
    public async Task ConcurrentClientsOnThreeSilos_GetExactlyNGrants()
    {
        var silos = await StartClusterAsync();
        try
        {
            var (id, apiKey) = await CreateLimitedUserAsync(silos[0]);

            var statuses = await Task.WhenAll(Enumerable.Range(0, 3 * Limit).Select(i => CompleteAsync(silos[i % 3], apiKey)));

            Assert.Equal(Limit, statuses.Count(s => s == HttpStatusCode.OK));
            Assert.Equal(2 * Limit, statuses.Count(s => s == (HttpStatusCode)429));
            Assert.Equal(Limit, await AdmittedAsync(silos[1], id));

            // An admin action through one silo holds on the very next request through every other.
            using var suspend = await silos[0].Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{id}/suspend", silos[0].AdminKey));
            Assert.Equal(HttpStatusCode.NoContent, suspend.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, await CompleteAsync(silos[1], apiKey));
            Assert.Equal(HttpStatusCode.Unauthorized, await CompleteAsync(silos[2], apiKey));
        }
        finally
        {
            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task SiloHostingTheUserKilledMidWindow_StillNeverMoreThanNGrants()
    {
        var silos = await StartClusterAsync();
        var alive = silos.ToList();
        try
        {
            var (id, apiKey) = await CreateLimitedUserAsync(silos[0]);
            var before = await Task.WhenAll(Enumerable.Range(0, Limit / 2).Select(i => CompleteAsync(silos[i % 3], apiKey)));
            Assert.All(before, s => Assert.Equal(HttpStatusCode.OK, s));

            // Kill the silo where the user's grain lives, with requests still arriving on every silo.
            var host = await HostOfUserAsync(silos[0], id);
            var victim = silos.Single(s => s.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress.Equals(host!));
            alive.Remove(victim);
            var during = Enumerable.Range(0, Limit).Select(i => CompleteAsync(silos[i % 3], apiKey)).ToList();
            await victim.KillAsync();
            var after = Enumerable.Range(0, 2 * Limit).Select(i => CompleteAsync(alive[i % 2], apiKey)).ToList();
            var statuses = before.Concat(await Task.WhenAll(during.Concat(after))).ToList();

            output.WriteLine(string.Join(", ", statuses.GroupBy(s => s).Select(g => $"{(int)g.Key}: {g.Count()}")));

            // Requests lost with the dead silo are not acknowledged; none of the rest may exceed N.
            Assert.InRange(statuses.Count(s => s == HttpStatusCode.OK), Limit / 2, Limit);
            Assert.InRange(await AdmittedAsync(alive[0], id), Limit / 2, Limit);

            // Once the cluster has settled, the grain lives on a survivor with the state it persisted.
            var survivors = alive.Select(s => s.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress).ToList();
            Assert.Contains(await HostOfUserAsync(alive[0], id), survivors);
            Assert.Equal((HttpStatusCode)429, await CompleteAsync(alive[1], apiKey));
        }
        finally
        {
            await Task.WhenAll(alive.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    private async Task<TestSilo[]> StartClusterAsync()
    {
        var cluster = await fixture.CreateClusterAsync(new Dictionary<string, string?>
        {
            // Detect the killed silo in seconds rather than a minute.
            ["Bastion:Cluster:Membership:ProbeTimeout"] = "00:00:01",
            ["Bastion:Cluster:Membership:NumMissedProbesLimit"] = "2",
            ["Bastion:Cluster:Membership:NumVotesForDeathDeclaration"] = "1",
            ["Bastion:Cluster:Membership:TableRefreshTimeout"] = "00:00:02",
            ["Bastion:Cluster:Messaging:ResponseTimeout"] = "00:00:20",
        });

        // Every member reads the one bootstrap key file, so any of them can act as admin in the test.
        cluster = cluster with { Settings = new Dictionary<string, string?>(cluster.Settings) { ["Bastion:Bootstrap:KeyFile"] = Path.Combine(cluster.Directory, "admin-api-key") } };

        // Start one first so that it alone bootstraps, then the others join its cluster.
        var first = await cluster.StartSiloAsync("0");
        var others = await Task.WhenAll(Enumerable.Range(1, 2).Select(i => cluster.StartSiloAsync(i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        return [first, .. others];
    }

    private static async Task<(string Id, string ApiKey)> CreateLimitedUserAsync(TestSilo silo)
    {
        var id = "exact-" + Guid.NewGuid().ToString("N");
        var apiKey = await silo.CreateUserWithKeyAsync(id, "user");
        using var limits = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", silo.AdminKey, new
        {
            requests = new { algorithm = "sliding_window", limit = Limit, window_seconds = 86400 },
            concurrency = 1000,
        }));
        Assert.Equal(HttpStatusCode.OK, limits.StatusCode);
        return (id, apiKey);
    }

    private static async Task<HttpStatusCode> CompleteAsync(TestSilo silo, string apiKey)
    {
        try
        {
            using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "Hi", max_tokens = 1 }));
            return response.StatusCode;
        }
        catch (Exception exception) when (exception is HttpRequestException or ObjectDisposedException or TaskCanceledException)
        {
            return 0;
        }
    }

    private static async Task<long> AdmittedAsync(TestSilo silo, string id)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{id}", silo.AdminKey));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("requests").GetInt64();
    }

    private static async Task<SiloAddress?> HostOfUserAsync(TestSilo silo, string id)
    {
        var grains = silo.Services.GetRequiredService<IGrainFactory>();
        var user = grains.GetGrain<IUserGrain>(silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(id));
        return await grains.GetGrain<IManagementGrain>(0).GetActivationAddress(user);
    }
}
