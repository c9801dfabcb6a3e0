using Bastion.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Client;

/// <summary>Client options, token reuse and what counts as transient.</summary>
public sealed class BastionClientOptionsTests
{
    [Fact]
    public void AddBastionClient_WithoutGatewaysOrIdentity_ThrowsNamingTheSettings()
    {
        var refused = Assert.Throws<OptionsValidationException>(() => new ServiceCollection().AddBastionClient(options => options.Gateways = ["nowhere"]));
        Assert.Contains(refused.Failures, failure => failure.Contains("Bastion:Client:Gateways: 'nowhere'", StringComparison.Ordinal));
        Assert.Contains(refused.Failures, failure => failure.Contains("Bastion:Client:ServiceName", StringComparison.Ordinal));
        Assert.Contains(refused.Failures, failure => failure.Contains("Bastion:Client:PrivateKeyFile", StringComparison.Ordinal));
        Assert.Contains(refused.Failures, failure => failure.Contains("Bastion:Client:ClusterId", StringComparison.Ordinal));
    }

    [Fact]
    public void AddBastionClient_WithATokenLifetimeOverFiveMinutes_Throws()
    {
        var refused = Assert.Throws<OptionsValidationException>(() => new ServiceCollection().AddBastionClient(options =>
        {
            options.Gateways = ["127.0.0.1:30000"];
            options.ClusterId = "c";
            options.ServiceName = "svc";
            options.PrivateKeyFile = "key.pem";
            options.TokenLifetime = TimeSpan.FromMinutes(10);
        }));
        Assert.Contains(refused.Failures, failure => failure.Contains("TokenLifetime", StringComparison.Ordinal));
    }

    [Fact]
    public void TokenFor_ReusesATokenUntilAMinuteBeforeItExpires()
    {
        var directory = Directory.CreateTempSubdirectory().FullName;
        var pair = Silo.Cluster.ServiceKeyPair.Create(directory, "svc");
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var issuer = new ServiceTokenIssuer("svc", pair.PrivateKeyFile, TimeSpan.FromMinutes(5), time);

        var first = issuer.TokenFor(null);
        Assert.NotEqual(first, issuer.TokenFor("alice"));
        time.Advance(TimeSpan.FromMinutes(3));
        Assert.Equal(first, issuer.TokenFor(null));
        time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        Assert.NotEqual(first, issuer.TokenFor(null));
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void ServiceTokenIssuer_WithoutAPrivateKey_ThrowsNamingTheSetting()
    {
        var directory = Directory.CreateTempSubdirectory().FullName;
        var pair = Silo.Cluster.ServiceKeyPair.Create(directory, "svc");
        var refused = Assert.Throws<InvalidOperationException>(() => new ServiceTokenIssuer("svc", pair.PublicKeyFile, TimeSpan.FromMinutes(5), TimeProvider.System));
        Assert.Contains("Bastion:Client:PrivateKeyFile", refused.Message, StringComparison.Ordinal);
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void IsTransient_LostSilosAndTimeoutsOnly()
    {
        Assert.True(BastionClient.IsTransient(new SiloUnavailableException()));
        Assert.True(BastionClient.IsTransient(new TimeoutException()));
        Assert.True(BastionClient.IsTransient(new Orleans.Runtime.Messaging.ConnectionFailedException("lost")));
        Assert.False(BastionClient.IsTransient(new Bastion.Cluster.ServiceRefusedException(Bastion.Cluster.ServiceRefusal.Forbidden, "no")));
        Assert.False(BastionClient.IsTransient(new InvalidOperationException()));
    }
}
