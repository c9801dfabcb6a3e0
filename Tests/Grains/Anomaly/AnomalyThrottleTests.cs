using Bastion.Anomaly;
using Bastion.Limits;

namespace Bastion.Tests.Grains.Anomaly;

public sealed class AnomalyThrottleTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly UserLimits Standard = new(
        new LimitPolicy(LimitAlgorithm.TokenBucket, 60, TimeSpan.FromMinutes(1)),
        new LimitPolicy(LimitAlgorithm.SlidingWindow, 100_000, TimeSpan.FromMinutes(1)),
        4,
        1_000_000,
        20_000_000);

    [Fact]
    public void Apply_WhileThrottled_ScalesRequestsTokensAndConcurrencyButNotQuotas()
    {
        var state = new AnomalyState();
        AnomalyThrottle.Start(state, 0.1, Now.AddHours(1));

        var limits = AnomalyThrottle.Apply(Standard, state, Now);

        Assert.Equal(new UserLimits(
            new LimitPolicy(LimitAlgorithm.TokenBucket, 6, TimeSpan.FromMinutes(1)),
            new LimitPolicy(LimitAlgorithm.SlidingWindow, 10_000, TimeSpan.FromMinutes(1)),
            1,
            1_000_000,
            20_000_000), limits);
    }

    [Fact]
    public void Apply_TinyLimits_NeverFallBelowOne()
    {
        var state = new AnomalyState();
        AnomalyThrottle.Start(state, 0.1, Now.AddHours(1));

        var limits = AnomalyThrottle.Apply(new UserLimits(new LimitPolicy(LimitAlgorithm.FixedWindow, 3, TimeSpan.FromMinutes(1)), null, 1, null, null), state, Now);

        Assert.Equal(1, limits.Requests!.Limit);
        Assert.Null(limits.Tokens);
        Assert.Equal(1, limits.Concurrency);
    }

    [Fact]
    public void Apply_FromTheExpiryOn_GivesTheLimitsBack()
    {
        var state = new AnomalyState();
        AnomalyThrottle.Start(state, 0.1, Now.AddHours(1));

        Assert.NotEqual(Standard, AnomalyThrottle.Apply(Standard, state, Now.AddHours(1).AddTicks(-1)));
        Assert.Equal(Standard, AnomalyThrottle.Apply(Standard, state, Now.AddHours(1)));
        Assert.Equal(Standard, AnomalyThrottle.Apply(Standard, new AnomalyState(), Now));
    }

    [Fact]
    public void Start_WhileThrottledLonger_NeverShortensTheThrottle()
    {
        var state = new AnomalyState();
        AnomalyThrottle.Start(state, 0.1, Now.AddHours(2));

        AnomalyThrottle.Start(state, 0.1, Now.AddHours(1));

        Assert.Equal(Now.AddHours(2), state.ThrottledUntil);
    }

    [Fact]
    public void Apply_LowerLimitOnTheSameCounters_RefusesAUserAlreadyPastIt()
    {
        // The throttle keeps the algorithm and window, so admission keeps the counters the user has run up.
        var admission = new AdmissionState();
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Admission.TryAdmit(admission, Standard with { Concurrency = null }, Guid.NewGuid(), 1, Now, TimeSpan.FromMinutes(10)).Admitted);
        }

        var state = new AnomalyState();
        AnomalyThrottle.Start(state, 0.1, Now.AddHours(1));
        var (admitted, status) = Admission.TryAdmit(admission, AnomalyThrottle.Apply(Standard with { Concurrency = null }, state, Now), Guid.NewGuid(), 1, Now, TimeSpan.FromMinutes(10));

        Assert.False(admitted);
        Assert.Equal(LimitKind.Requests, status!.Kind);
        Assert.Equal(6, status.Limit);
    }
}
