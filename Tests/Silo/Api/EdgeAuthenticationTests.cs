using System.Net;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Api;

/// <summary>Failures the edge can decide never cost a grain activation or a database read.</summary>
[Collection(SiloCollection.Name)]
public sealed class EdgeAuthenticationTests(SiloFixture fixture)
{
    [Fact]
    public async Task ApiKey_WithAnInventedKeyId_IsRefusedWithoutActivatingItsRouteGrain()
    {
        var genuine = await fixture.Silo.CreateUserWithKeyAsync("edge-" + Guid.NewGuid().ToString("N"), "user");
        var grains = fixture.Silo.Services.GetRequiredService<IGrainFactory>();
        var management = grains.GetGrain<IManagementGrain>(0);

        foreach (var position in new[] { 4, 15, 20, 27 })
        {
            // Flip one hex digit of the key id: same shape, but not an id Bastion issued.
            var forged = genuine[..position] + (genuine[position] == 'a' ? 'b' : 'a') + genuine[(position + 1)..];
            using var response = await fixture.Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", forged));

            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var route = (GrainReference)grains.GetGrain<IApiKeyRouteGrain>(forged.Split('_')[1]);
            Assert.Equal(0, await management.GetGrainActivationCount(route));
        }

        // The count is real: the genuine key's route grain is active.
        using var ok = await fixture.Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", genuine));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(1, await management.GetGrainActivationCount((GrainReference)grains.GetGrain<IApiKeyRouteGrain>(genuine.Split('_')[1])));
    }
}
