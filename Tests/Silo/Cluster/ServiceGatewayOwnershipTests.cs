using Bastion.Cluster;
using Bastion.Generation;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// A generation started through the service gateway is readable and cancellable only by the service that started it,
/// for the same user, and only while that user's grain still admits the credential. Another service with its own valid
/// token, or the right service for another user, is refused; suspending the user or revoking the tokens stops even the owner.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ServiceGatewayOwnershipTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    // More tokens than the generation's buffer holds (64 pieces): unread, it pauses mid-run, so a cancel that got
    // through would show as a cancelled result.
    private const int LongerThanTheBuffer = 200;

    [Fact]
    public async Task ReadAndCancel_ByAnotherServiceOrForAnotherUser_AreRefused_WhileTheOwnerReadsUntilSuspendedOrRevoked()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var ownerKeys = ServiceKeyPair.Create(directory, "svc-owner");
        var attackerKeys = ServiceKeyPair.Create(directory, "svc-attacker");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(ownerKeys, attackerKeys));
        await silo.CreateUserWithKeyAsync(ownerKeys.Name, "service");
        await silo.CreateUserWithKeyAsync(attackerKeys.Name, "service");
        var alice = $"alice-{Guid.NewGuid():N}";
        var bob = $"bob-{Guid.NewGuid():N}";
        await silo.CreateUserWithKeyAsync(alice, "user");
        await silo.CreateUserWithKeyAsync(bob, "user");
        await using var owner = await ServiceClientHost.StartAsync(silo, ownerKeys);
        await using var attacker = await ServiceClientHost.StartAsync(silo, attackerKeys);

        var ownerSelf = owner.Tokens.TokenFor(null);
        var ownerForAlice = owner.Tokens.TokenFor(alice);
        var ownerForBob = owner.Tokens.TokenFor(bob);
        var attackerSelf = attacker.Tokens.TokenFor(null);
        var attackerForAlice = attacker.Tokens.TokenFor(alice);

        var serviceOwn = await On(owner, ownerSelf, g => g.StartCompletionAsync(new GenerationRequest(Model, "Hi", LongerThanTheBuffer), null));
        var forAlice = await On(owner, ownerForAlice, g => g.StartCompletionAsync(new GenerationRequest(Model, "Hi", LongerThanTheBuffer), alice));

        // Written by hand: who calls (with which token), on which generation. Every one of them is refused as NotFound,
        // exactly as for an id that names nothing, for reads and cancels alike.
        (string Case, ServiceClientHost Client, string Token, Guid Generation)[] refused =
        [
            ("another service, its own generation", attacker, attackerSelf, serviceOwn),
            ("another service, the generation for alice", attacker, attackerSelf, forAlice),
            ("another service acting for alice, the generation for alice", attacker, attackerForAlice, forAlice),
            ("the starting service for itself, the generation for alice", owner, ownerSelf, forAlice),
            ("the starting service for bob, the generation for alice", owner, ownerForBob, forAlice),
            ("the starting service for alice, its own generation", owner, ownerForAlice, serviceOwn),
        ];
        foreach (var (@case, client, token, generation) in refused)
        {
            var read = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(client, token, g => g.ReadAsync(generation, 0, 8)));
            Assert.True(read.Reason == ServiceRefusal.NotFound, $"read, {@case}: {read.Reason}");
            var cancel = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(client, token, async g =>
            {
                await g.CancelAsync(generation);
                return true;
            }));
            Assert.True(cancel.Reason == ServiceRefusal.NotFound, $"cancel, {@case}: {cancel.Reason}");
        }

        var unknown = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(attacker, attackerSelf, async g =>
        {
            await g.CancelAsync(Guid.NewGuid());
            return true;
        }));
        Assert.Equal(ServiceRefusal.NotFound, unknown.Reason);

        // None of those cancels reached a generation: the owner reads both to their natural end.
        Assert.NotEqual(FinishReasons.Cancelled, (await ReadToEndAsync(owner, ownerSelf, serviceOwn)).FinishReason);
        Assert.NotEqual(FinishReasons.Cancelled, (await ReadToEndAsync(owner, ownerForAlice, forAlice)).FinishReason);

        // The owner's own cancel goes through.
        var cancelled = await On(owner, ownerForAlice, g => g.StartCompletionAsync(new GenerationRequest(Model, "Hi", LongerThanTheBuffer), alice));
        await On(owner, ownerForAlice, async g =>
        {
            await g.CancelAsync(cancelled);
            return true;
        });
        Assert.Equal(FinishReasons.Cancelled, (await ReadToEndAsync(owner, ownerForAlice, cancelled)).FinishReason);

        // A suspended user's generation can no longer be read, even by the service that started it for her; resumed, it can.
        var suspendedRead = await On(owner, ownerForAlice, g => g.StartCompletionAsync(new GenerationRequest(Model, "Hi", 4), alice));
        await AdminAsync(silo, $"/admin/users/{alice}/suspend");
        var suspended = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(owner, ownerForAlice, g => g.ReadAsync(suspendedRead, 0, 8)));
        Assert.Equal(ServiceRefusal.Suspended, suspended.Reason);
        var suspendedCancel = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(owner, ownerForAlice, async g =>
        {
            await g.CancelAsync(suspendedRead);
            return true;
        }));
        Assert.Equal(ServiceRefusal.Suspended, suspendedCancel.Reason);
        await AdminAsync(silo, $"/admin/users/{alice}/resume");
        await ReadToEndAsync(owner, ownerForAlice, suspendedRead);

        // A service that may no longer act for users cannot read what it started for one; given the role back, it can.
        var demotedRead = await On(owner, ownerForAlice, g => g.StartCompletionAsync(new GenerationRequest(Model, "Hi", 4), alice));
        await SetRolesAsync(silo, ownerKeys.Name, "user");
        var demoted = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(owner, ownerForAlice, g => g.ReadAsync(demotedRead, 0, 8)));
        Assert.Equal(ServiceRefusal.Forbidden, demoted.Reason);
        await SetRolesAsync(silo, ownerKeys.Name, "service");
        await ReadToEndAsync(owner, ownerForAlice, demotedRead);

        // Tokens the verified-token cache already holds are replayed after a revoke-tokens: the user grain refuses them
        // (alice's for the token acting for her, the service's own for its token).
        var afterRevoke = await On(owner, ownerForAlice, g => g.StartCompletionAsync(new GenerationRequest(Model, "Hi", 4), alice));
        var ownAfterRevoke = await On(owner, ownerSelf, g => g.StartCompletionAsync(new GenerationRequest(Model, "Hi", 4), null));
        await AdminAsync(silo, $"/admin/users/{alice}/revoke-tokens");
        var revokedUser = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(owner, ownerForAlice, g => g.ReadAsync(afterRevoke, 0, 8)));
        Assert.Equal(ServiceRefusal.NotAuthenticated, revokedUser.Reason);
        Assert.NotNull(await On(owner, ownerSelf, g => g.ReadAsync(ownAfterRevoke, 0, 8)));
        await AdminAsync(silo, $"/admin/users/{ownerKeys.Name}/revoke-tokens");
        var revokedService = await Assert.ThrowsAsync<ServiceRefusedException>(() => On(owner, ownerSelf, g => g.ReadAsync(ownAfterRevoke, 0, 8)));
        Assert.Equal(ServiceRefusal.NotAuthenticated, revokedService.Reason);
    }

    private static async Task<T> On<T>(ServiceClientHost client, string token, Func<IServiceGateway, Task<T>> call)
    {
        RequestContext.Set(ServiceCallContext.ServiceTokenKey, token);
        try
        {
            return await call(client.Cluster.GetGrain<IServiceGateway>(0));
        }
        finally
        {
            RequestContext.Remove(ServiceCallContext.ServiceTokenKey);
        }
    }

    private static async Task<GenerationResult> ReadToEndAsync(ServiceClientHost client, string token, Guid generation)
    {
        var index = 0;
        while (true)
        {
            var chunk = await On(client, token, g => g.ReadAsync(generation, index, 64));
            index += chunk.Pieces.Count;
            if (chunk.Result is { } result)
            {
                return result;
            }
        }
    }

    private static async Task SetRolesAsync(TestSilo silo, string userId, string role)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{userId}/roles", silo.AdminKey, new { roles = new[] { role } }));
        Assert.True(response.IsSuccessStatusCode, $"PUT roles of {userId}: {(int)response.StatusCode}");
    }

    private static async Task AdminAsync(TestSilo silo, string path)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, path, silo.AdminKey));
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode}");
    }
}
