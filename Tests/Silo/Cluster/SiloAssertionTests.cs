using Bastion.Cluster;
using Bastion.Security;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>A silo assertion proves exactly one call, briefly: another target, method, key or time refuses it.</summary>
[Trait("Category", "Cluster")]
public sealed class SiloAssertionTests
{
    private static readonly GrainInterfaceType Interface = GrainInterfaceType.Create("bastion.user");
    private static readonly GrainId Target = GrainId.Create("bastion.user", "u_alice");

    [Fact]
    public void Verify_TheSameCallWithinTheWindow_Accepts()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var assertions = new SiloAssertion(new AssertionKey(1), time);
        var assertion = assertions.Create(Target, Interface, "GetProfileAsync");
        time.Advance(SiloAssertion.Window);
        Assert.True(assertions.Verify(assertion, Target, Interface, "GetProfileAsync"));
    }

    [Fact]
    public void Verify_AnotherTargetMethodKeyOrTime_Refuses()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var assertions = new SiloAssertion(new AssertionKey(1), time);
        var assertion = assertions.Create(Target, Interface, "GetProfileAsync");

        Assert.False(assertions.Verify(assertion, GrainId.Create("bastion.user", "u_bob"), Interface, "GetProfileAsync"));
        Assert.False(assertions.Verify(assertion, Target, Interface, "SetRolesAsync"));
        Assert.False(assertions.Verify(assertion, Target, GrainInterfaceType.Create("bastion.generation"), "GetProfileAsync"));
        Assert.False(new SiloAssertion(new AssertionKey(2), time).Verify(assertion, Target, Interface, "GetProfileAsync"));
        Assert.False(assertions.Verify(assertion[..^2] + "AA", Target, Interface, "GetProfileAsync"));
        Assert.False(assertions.Verify(null, Target, Interface, "GetProfileAsync"));
        time.Advance(SiloAssertion.Window + TimeSpan.FromSeconds(1));
        Assert.False(assertions.Verify(assertion, Target, Interface, "GetProfileAsync"));
    }

    [Fact]
    public void ClusterAssertionKey_IsDerivedFromButNotThePseudonymKey()
    {
        var pseudonymKey = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var derived = ClusterAssertionKeys.Derive(pseudonymKey);
        Assert.Equal(32, derived.Length);
        Assert.NotEqual(pseudonymKey, derived);
        Assert.Equal(derived, ClusterAssertionKeys.Derive(pseudonymKey));
    }

    private sealed class AssertionKey(byte seed) : IKeyProvider
    {
        private readonly byte[] _key = ClusterAssertionKeys.Derive(Enumerable.Repeat(seed, 32).ToArray());

        public ReadOnlySpan<byte> PseudonymKey => throw new NotSupportedException();

        public ReadOnlySpan<byte> ClusterAssertionKey => _key;

        public VersionedSecret CurrentApiKeyHashingKey => throw new NotSupportedException();

        public SigningCredentials SigningCredentials => throw new NotSupportedException();

        public IReadOnlyList<SecurityKey> ValidationKeys => throw new NotSupportedException();

        public VersionedSecret CurrentKek => throw new NotSupportedException();

        public IReadOnlyList<int> KekVersions => throw new NotSupportedException();

        public VersionedSecret? FindApiKeyHashingKey(int version) => throw new NotSupportedException();

        public VersionedSecret? FindKek(int version) => throw new NotSupportedException();

        public void RetireKek(int version) => throw new NotSupportedException();
    }
}
