using Bastion.Hosting;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>A bad service entry stops the silo before it joins the cluster, with a message naming the setting.</summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ServiceKeysTests(SiloFixture fixture)
{
    [Fact]
    public async Task Start_WithAPrivateKeyAsAServicePublicKey_IsRefusedNamingTheSetting()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var service = ServiceKeyPair.Create(directory, "svc-leaky");
        var settings = ServiceKeyPair.Settings(service);
        settings["Bastion:Cluster:Services:0:PublicKeyFile"] = service.PrivateKeyFile;

        var refused = await Assert.ThrowsAsync<StartupException>(() => TestSilo.StartAsync(database, directory, settings));
        Assert.Contains("Bastion:Cluster:Services:0:PublicKeyFile", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(service.PrivateKeyFile, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_WithAServiceConfiguredTwice_IsRefusedNamingTheSetting()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var service = ServiceKeyPair.Create(directory, "svc-twice");
        var settings = ServiceKeyPair.Settings(service, service);

        var refused = await Assert.ThrowsAsync<StartupException>(() => TestSilo.StartAsync(database, directory, settings));
        Assert.Contains("Bastion:Cluster:Services:1:Name", refused.Message, StringComparison.Ordinal);
    }
}
