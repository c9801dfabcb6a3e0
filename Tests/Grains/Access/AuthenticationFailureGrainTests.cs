using System.Net;
using Bastion.Access;
using Bastion.Api;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Grains.Access;

/// <summary>The failure counter's fixed window, and which client addresses share a partition.</summary>
public sealed class AuthenticationFailureGrainTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task BlocksAtTheLimit_UntilTheWindowEnds_ThenCountsAfresh()
    {
        var start = new DateTimeOffset(2026, 12, 2, 10, 0, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(start);
        var grain = new AuthenticationFailureGrain(time);

        Assert.Null(await grain.RecordAsync(3, Minute));
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.Null(await grain.RecordAsync(3, Minute));
        Assert.Equal(start + Minute, await grain.RecordAsync(3, Minute));
        Assert.Equal(start + Minute, await grain.RecordAsync(3, Minute));

        time.Advance(TimeSpan.FromSeconds(1)); // the window that opened at start has ended
        Assert.Null(await grain.RecordAsync(3, Minute));
    }

    [Theory]
    [InlineData("192.0.2.1", "192.0.2.1", true)]
    [InlineData("192.0.2.1", "::ffff:192.0.2.1", true)]
    [InlineData("192.0.2.1", "192.0.2.2", false)]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true)] // one /64
    [InlineData("2001:db8:1:2::1", "2001:db8:1:3::1", false)]
    public void Addresses_SharePartitionsByHostOrSlash64(string first, string second, bool shared)
    {
        var a = AuthenticationFailureLimiter.AddressPartition(IPAddress.Parse(first));
        var b = AuthenticationFailureLimiter.AddressPartition(IPAddress.Parse(second));
        Assert.Equal(shared, a == b);
        Assert.DoesNotContain(first, a, StringComparison.Ordinal);
    }
}
