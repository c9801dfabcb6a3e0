using System.Net;
using Bastion.Security;

namespace Bastion.Tests.Silo.Security;

public sealed class ClientNetworksTests
{
    private readonly ClientNetworks _networks = new(TestKeys.Provider());

    [Theory]
    [InlineData("203.0.113.7", "203.0.113.250", true)] // one IPv4 /24
    [InlineData("203.0.113.7", "203.0.114.7", false)]
    [InlineData("2001:db8:1:aaaa::1", "2001:db8:1:bbbb::2", true)] // one IPv6 /48
    [InlineData("2001:db8:1::1", "2001:db8:2::1", false)]
    [InlineData("::ffff:203.0.113.7", "203.0.113.9", true)] // an IPv4-mapped address is its IPv4 network
    public void Hash_OneNetworkPerPrefix(string first, string second, bool same)
    {
        Assert.Equal(same, _networks.Hash("u_alice", IPAddress.Parse(first)) == _networks.Hash("u_alice", IPAddress.Parse(second)));
    }

    [Fact]
    public void Hash_OneNetworkForTwoUsers_DiffersSoStatesCannotBeLinked()
    {
        var address = IPAddress.Parse("203.0.113.7");

        Assert.NotEqual(_networks.Hash("u_alice", address), _networks.Hash("u_bob", address));
    }

    [Fact]
    public void Hash_HoldsNoAddressAndIsStable()
    {
        var hash = _networks.Hash("u_alice", IPAddress.Parse("203.0.113.7"))!;

        Assert.StartsWith("n_", hash, StringComparison.Ordinal);
        Assert.DoesNotContain("203", hash, StringComparison.Ordinal);
        Assert.Equal(hash, new ClientNetworks(TestKeys.Provider()).Hash("u_alice", IPAddress.Parse("203.0.113.99")));
        Assert.Null(_networks.Hash("u_alice", null));
    }
}
