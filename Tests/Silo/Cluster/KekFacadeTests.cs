using Bastion.Cluster;
using Bastion.Security;
using Bastion.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>KEK rotation through the facade: refused without <c>manage keys</c>, and with it the same outcomes and audit entries as <c>/admin/keys</c>.</summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class KekFacadeTests(SiloFixture fixture)
{
    [Fact]
    public async Task KeyOperations_NeedManageKeys_ThenListRewrapAndRetireWithClearOutcomes()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var operator_ = ServiceKeyPair.Create(directory, "svc-keys-ops");
        var app = ServiceKeyPair.Create(directory, "svc-keys-app");
        await using var silo = await TestSilo.StartAsync(database, directory, ServiceKeyPair.Settings(operator_, app));
        await silo.CreateUserWithKeyAsync(operator_.Name, "admin");
        await silo.CreateUserWithKeyAsync(app.Name, "service");
        await using var ops = await ServiceClientHost.StartAsync(silo, operator_);
        await using var appClient = await ServiceClientHost.StartAsync(silo, app);

        // The service role has no manage-keys permission: every key operation is refused, and nothing runs.
        Assert.Equal(ServiceRefusal.Forbidden, (await Assert.ThrowsAsync<ServiceRefusedException>(() => appClient.Client.ListKeksAsync())).Reason);
        Assert.Equal(ServiceRefusal.Forbidden, (await Assert.ThrowsAsync<ServiceRefusedException>(() => appClient.Client.StartKekRewrapAsync())).Reason);
        Assert.Equal(ServiceRefusal.Forbidden, (await Assert.ThrowsAsync<ServiceRefusedException>(() => appClient.Client.GetKekRewrapStatusAsync())).Reason);
        Assert.Equal(ServiceRefusal.Forbidden, (await Assert.ThrowsAsync<ServiceRefusedException>(() => appClient.Client.RetireKekAsync(1))).Reason);
        Assert.Equal(KekRewrapState.Idle, silo.Services.GetRequiredService<RewrapJob>().Progress.State);

        var before = Assert.Single(await ops.Client.ListKeksAsync());
        Assert.Equal(1, before.Version);
        Assert.True(before.Current);
        Assert.True(before.Available);
        Assert.True(before.DataKeys >= 2); // the system scope and the two services

        DevelopmentKeyring.AddKek(Path.Combine(directory, "keyring.json"));
        var inUse = await ops.Client.RetireKekAsync(1);
        Assert.Equal(KekRetireResult.InUse, inUse.Result);
        Assert.InRange(inUse.DataKeys, 1, before.DataKeys); // a write meanwhile re-wraps its own key (lazy re-wrap)
        Assert.Equal(KekRetireResult.Current, (await ops.Client.RetireKekAsync(2)).Result);
        Assert.Equal(KekRetireResult.NotFound, (await ops.Client.RetireKekAsync(99)).Result);
        Assert.Equal(ServiceRefusal.InvalidRequest, (await Assert.ThrowsAsync<ServiceRefusedException>(() => ops.Client.RetireKekAsync(0))).Reason);

        var start = await ops.Client.StartKekRewrapAsync();
        Assert.True(start.Started);
        Assert.Equal(2, start.Status.CurrentKekVersion);
        await silo.Services.GetRequiredService<RewrapJob>().Completion;
        var status = await ops.Client.GetKekRewrapStatusAsync();
        Assert.Equal(KekRewrapState.Done, status.State);
        Assert.Equal(0, status.Remaining);
        Assert.Equal(status.Total, status.Done);
        Assert.True(status.Total >= 1); // fewer than before.DataKeys when writes re-wrapped their own keys first (lazy re-wrap)
        Assert.Null(status.Error);

        var after = await ops.Client.ListKeksAsync();
        Assert.Equal(0, after.Single(k => k.Version == 1).DataKeys);
        Assert.True(after.Single(k => k.Version == 2).Current);
        Assert.Equal(new KekRetirement(1, KekRetireResult.Retired, 0), await ops.Client.RetireKekAsync(1));
        Assert.Equal(KekRetireResult.NotFound, (await ops.Client.RetireKekAsync(1)).Result); // a repeat: already retired
        Assert.DoesNotContain(1, silo.Services.GetRequiredService<IKeyProvider>().KekVersions);

        using var audit = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/admin/audit?limit=50", silo.AdminKey));
        var entries = await audit.Content.ReadAsStringAsync();
        Assert.Contains("\"keys.rewrap\"", entries, StringComparison.Ordinal);
        Assert.Contains("\"keys.retire-kek\"", entries, StringComparison.Ordinal);
    }
}
