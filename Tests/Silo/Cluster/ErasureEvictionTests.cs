using System.Net;
using Bastion.Security;
using Bastion.Storage;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// An erasure through one silo reaches every other silo's memory: a data key another silo had cached is evicted and
/// zeroed before the delete answers, so that silo cannot open or seal the erased user's state with it.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ErasureEvictionTests(SiloFixture fixture)
{
    [Fact]
    public async Task DeleteThroughOneSilo_EvictsAndZeroesTheKeyAnotherSiloCached()
    {
        var cluster = await fixture.CreateClusterAsync();
        cluster = cluster with { Settings = new Dictionary<string, string?>(cluster.Settings) { ["Bastion:Bootstrap:KeyFile"] = Path.Combine(cluster.Directory, "admin-api-key") } };
        var first = await cluster.StartSiloAsync("first");
        await using var firstSilo = first;
        await using var second = await cluster.StartSiloAsync("second");

        // The broadcast goes to the members the deleting silo knows of: make sure it has read the second one's join.
        await first.Services.GetRequiredService<IClusterMembershipService>().Refresh();
        Assert.Equal(2, ActiveMembersSeenBy(first));

        var id = $"evict-{Guid.NewGuid():N}";
        await first.CreateUserWithKeyAsync(id, "user");
        var scope = DataKeyScope.ForUser(first.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(id));

        // The second silo holds the user's key in memory, as it would after serving them.
        var cachedElsewhere = await second.Services.GetRequiredService<DataKeyStore>().GetCurrentAsync(scope, CancellationToken.None);
        var sealedBefore = EnvelopeCipher.Seal("state"u8, "ad"u8, cachedElsewhere);
        Assert.Equal(cachedElsewhere.Id, (await first.Services.GetRequiredService<DataKeyStore>().GetCurrentAsync(scope, CancellationToken.None)).Id);

        using (var deleted = await first.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, $"/admin/users/{id}", first.AdminKey)))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        Assert.True(cachedElsewhere.IsRetired);
        Assert.Equal(new byte[32], cachedElsewhere.Key);
        Assert.Throws<DataKeyUnavailableException>(() => EnvelopeCipher.Open(sealedBefore, "ad"u8, cachedElsewhere));
        Assert.Throws<DataKeyUnavailableException>(() => EnvelopeCipher.Seal("state"u8, "ad"u8, cachedElsewhere));
        await Assert.ThrowsAsync<DataKeyErasedException>(() => second.Services.GetRequiredService<DataKeyStore>().FindAsync(scope, cachedElsewhere.Id, CancellationToken.None));
        Assert.Null(await second.Services.GetRequiredService<IGrainFactory>().GetGrain<IUserGrain>(scope["user:".Length..]).GetProfileAsync());
    }

    private static int ActiveMembersSeenBy(TestSilo silo) =>
        silo.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values.Count(member => member.Status == SiloStatus.Active);
}
