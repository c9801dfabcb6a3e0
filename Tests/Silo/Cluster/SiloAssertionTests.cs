using Bastion.Cluster;
using Bastion.Security;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// A silo assertion proves exactly one call, briefly: another sender, target, interface, method, argument digest,
/// key or time refuses it; every enabled key version verifies, and a disabled one does not.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class SiloAssertionTests
{
    private static readonly SiloCall Call = new(
        GrainId.Create("bastion.api", "silo-a"),
        GrainId.Create("bastion.user", "u_alice"),
        GrainInterfaceType.Create("bastion.user"),
        "GetProfileAsync",
        new byte[] { 1, 2, 3 });

    [Fact]
    public void Verify_TheSameCallWithinTheWindow_Accepts()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var assertions = new SiloAssertion(new AssertionKeys(current: 1, 1), time);
        var assertion = assertions.Create(Call);
        time.Advance(SiloAssertion.Window);
        Assert.True(assertions.Verify(assertion, Call with { ArgumentsDigest = new byte[] { 1, 2, 3 } }));
        Assert.StartsWith("1.", assertion, StringComparison.Ordinal);
    }

    public static TheoryData<string, SiloCall> OtherCalls => new()
    {
        { "another sender", Call with { Source = GrainId.Create("bastion.api", "silo-b") } },
        { "no sender", Call with { Source = null } },
        { "another target", Call with { Target = GrainId.Create("bastion.user", "u_bob") } },
        { "another interface", Call with { Interface = GrainInterfaceType.Create("bastion.generation") } },
        { "another method", Call with { Method = "SetRolesAsync" } },
        { "other arguments", Call with { ArgumentsDigest = new byte[] { 1, 2, 4 } } },
        { "no arguments", Call with { ArgumentsDigest = Array.Empty<byte>() } },
    };

    [Theory]
    [MemberData(nameof(OtherCalls))]
    public void Verify_AnyOtherCall_Refuses(string change, SiloCall other)
    {
        var assertions = new SiloAssertion(new AssertionKeys(current: 1, 1), new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000)));
        Assert.False(assertions.Verify(assertions.Create(Call), other), change);
    }

    [Fact]
    public void Verify_TamperedExpiredOrForeign_Refuses()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var assertions = new SiloAssertion(new AssertionKeys(current: 1, 1), time);
        var assertion = assertions.Create(Call);

        Assert.False(new SiloAssertion(new AssertionKeys(current: 1, 1, seed: 9), time).Verify(assertion, Call));
        Assert.False(assertions.Verify(assertion[..^2] + "AA", Call));
        Assert.False(assertions.Verify("2" + assertion[1..], Call)); // another key version's claim
        Assert.False(assertions.Verify(assertion + ".1", Call));
        Assert.False(assertions.Verify(null, Call));
        Assert.False(assertions.Verify("", Call));
        time.Advance(SiloAssertion.Window + TimeSpan.FromSeconds(1));
        Assert.False(assertions.Verify(assertion, Call));
    }

    [Fact]
    public void Rotation_OldVersionVerifiesWhileEnabled_NewOneSigns_DisabledOneRefused()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var before = new SiloAssertion(new AssertionKeys(current: 1, 1), time).Create(Call);
        var rotated = new SiloAssertion(new AssertionKeys(current: 2, 1, 2), time);

        Assert.True(rotated.Verify(before, Call));
        Assert.StartsWith("2.", rotated.Create(Call), StringComparison.Ordinal);
        Assert.True(new SiloAssertion(new AssertionKeys(current: 2, 1, 2), time).Verify(rotated.Create(Call), Call));
        Assert.False(new SiloAssertion(new AssertionKeys(current: 2, 2), time).Verify(before, Call));
    }

    /// <summary>Cluster-assertion keys only; version v's key is 32 bytes of (seed + v).</summary>
    private sealed class AssertionKeys(int current, params int[] enabled) : Bastion.Tests.Silo.Security.PartialKeyProvider
    {
        private readonly byte _seed;

        public AssertionKeys(int current, int enabled, byte seed)
            : this(current, enabled) => _seed = seed;

        public override VersionedSecret CurrentClusterAssertionKey => Key(current);

        public override VersionedSecret? FindClusterAssertionKey(int version) => enabled.Contains(version) ? Key(version) : null;

        private VersionedSecret Key(int version) => new(version, Enumerable.Repeat((byte)(_seed + version), 32).ToArray());
    }
}
