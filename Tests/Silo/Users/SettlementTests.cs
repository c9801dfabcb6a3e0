using Bastion.Generation;
using Bastion.Security;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Users;

/// <summary>A generation's usage counts once, even when its settlement is sent again after a reply lost in a failover.</summary>
[Collection(SiloCollection.Name)]
public sealed class SettlementTests(SiloFixture fixture)
{
    [Fact]
    public async Task Settle_RepeatedForOneGeneration_CountsItsUsageOnce()
    {
        var silo = fixture.Silo;
        var grains = silo.Services.GetRequiredService<IGrainFactory>();
        var user = grains.GetGrain<IUserGrain>(silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize("settle-" + Guid.NewGuid().ToString("N")));
        Assert.True(await user.CreateAsync(["user"]));
        var generation = Guid.NewGuid();

        await user.SettleAsync(generation, new TokenUsage(3, 4));
        await user.SettleAsync(generation, new TokenUsage(3, 4));
        await user.SettleAsync(Guid.NewGuid(), new TokenUsage(1, 1));

        var profile = await user.GetProfileAsync();
        Assert.Equal(new TokenUsage(4, 5), profile!.Usage);
    }
}
