using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

/// <summary>
/// Long seeded random runs of requests, partial refunds and clock advances (ticks to several windows), checked
/// against the definition of each algorithm on the units actually used.
/// </summary>
public sealed class RateLimiterPropertyTests
{
    private const long Limit = 7;
    private const int Steps = 4000;
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(60);
    private static readonly DateTimeOffset Start = new(2026, 5, 17, 13, 42, 11, TimeSpan.Zero);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TryAcquire_SlidingWindowRandomRun_NeverExceedsLimitInAnyWindowAndRefusesOnlyWhenFull(int seed)
    {
        var run = Simulate(LimitAlgorithm.SlidingWindow, seed);

        for (var i = 0; i < run.Grants.Count; i++)
        {
            var inWindow = 0L;
            for (var j = i; j < run.Grants.Count && run.Grants[j].At < run.Grants[i].At + Window.Ticks; j++)
            {
                inWindow += run.Grants[j].Used;
            }

            Assert.True(inWindow <= Limit, $"{inWindow} units in the window starting at grant {i}");
        }

        // Exact, not merely safe: every refusal happened with the window really full.
        foreach (var refusal in run.Refusals)
        {
            Assert.True(refusal.CountedInWindow + refusal.Cost > Limit, $"refused {refusal.Cost} with {refusal.CountedInWindow} counted");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TryAcquire_FixedWindowRandomRun_NeverExceedsLimitPerWindowAndRefusesOnlyWhenFull(int seed)
    {
        var run = Simulate(LimitAlgorithm.FixedWindow, seed);

        foreach (var window in run.Grants.GroupBy(g => FixedWindowIndex(g.At)))
        {
            Assert.True(window.Sum(g => g.Used) <= Limit, $"{window.Sum(g => g.Used)} units in window {window.Key}");
        }

        foreach (var refusal in run.Refusals)
        {
            Assert.True(refusal.CountedInFixedWindow + refusal.Cost > Limit, $"refused {refusal.Cost} with {refusal.CountedInFixedWindow} counted");
        }
    }

    [Theory]
    [InlineData(LimitAlgorithm.TokenBucket, 1)]
    [InlineData(LimitAlgorithm.TokenBucket, 2)]
    [InlineData(LimitAlgorithm.LeakyBucket, 1)]
    [InlineData(LimitAlgorithm.LeakyBucket, 2)]
    public void TryAcquire_BucketRandomRun_NeverExceedsCapacityPlusRefill(LimitAlgorithm algorithm, int seed)
    {
        var run = Simulate(algorithm, seed);
        var grants = run.Grants;

        // Between any two grants, at most a full bucket plus what refilled in between (in fixed point: units × W).
        for (var i = 0; i < grants.Count; i++)
        {
            Int128 used = 0;
            for (var j = i; j < grants.Count; j++)
            {
                used += grants[j].Used;
                var bound = ((Int128)Limit * Window.Ticks) + ((Int128)Limit * (grants[j].At - grants[i].At));
                if (used * Window.Ticks > bound)
                {
                    Assert.Fail($"grants {i}..{j} used {used}");
                }
            }
        }

        Assert.NotEmpty(run.Refusals);
    }

    private static long FixedWindowIndex(long ticks) => (ticks - DateTimeOffset.UnixEpoch.UtcTicks) / Window.Ticks;

    private static Run Simulate(LimitAlgorithm algorithm, int seed)
    {
        var random = new Random(seed);
        var policy = new LimitPolicy(algorithm, Limit, Window);
        var state = new LimiterState();
        var run = new Run();
        var pendingRefunds = new List<(Grant Grant, long Amount, int DueStep)>();
        var now = Start;

        for (var step = 0; step < Steps; step++)
        {
            now += TimeSpan.FromTicks(NextAdvance(random));

            foreach (var due in pendingRefunds.Where(r => r.DueStep <= step).ToList())
            {
                RateLimiter.Refund(policy, state, due.Amount, new DateTimeOffset(due.Grant.At, TimeSpan.Zero), now);
                due.Grant.Used -= due.Amount;
                pendingRefunds.Remove(due);
            }

            var cost = random.Next(20) == 0 ? Limit + 1 : random.Next(1, (int)Limit + 1);
            var decision = RateLimiter.TryAcquire(policy, state, cost, now);
            if (cost > Limit)
            {
                Assert.True(decision.NeverFits);
                continue;
            }

            Assert.False(decision.NeverFits);
            if (decision.Granted)
            {
                var grant = new Grant(now.UtcTicks, cost);
                run.Grants.Add(grant);
                if (random.Next(3) == 0)
                {
                    pendingRefunds.Add((grant, random.Next(0, (int)cost + 1), step + random.Next(0, 4)));
                }

                continue;
            }

            // The promise behind Retry-After: one tick early is refused, on time is granted (if nothing else happens).
            Assert.False(RateLimiter.Peek(policy, state, cost, now + decision.RetryAfter - TimeSpan.FromTicks(1)).Granted);
            Assert.True(RateLimiter.Peek(policy, state, cost, now + decision.RetryAfter).Granted);
            var recent = run.Grants.AsEnumerable().Reverse().TakeWhile(g => g.At > now.UtcTicks - Window.Ticks).Sum(g => g.Used);
            var thisWindow = run.Grants.AsEnumerable().Reverse().TakeWhile(g => FixedWindowIndex(g.At) == FixedWindowIndex(now.UtcTicks)).Sum(g => g.Used);
            run.Refusals.Add(new Refusal(cost, recent, thisWindow));
        }

        return run;
    }

    private static long NextAdvance(Random random) => random.Next(100) switch
    {
        < 30 => 0,
        < 60 => random.NextInt64(1, Window.Ticks / 10),
        < 95 => random.NextInt64(1, Window.Ticks),
        _ => random.NextInt64(Window.Ticks, 3 * Window.Ticks),
    };

    private sealed class Run
    {
        public List<Grant> Grants { get; } = [];

        public List<Refusal> Refusals { get; } = [];
    }

    /// <summary>A grant, with the units it really used once its refund (if any) has come back.</summary>
    private sealed class Grant(long at, long used)
    {
        public long At { get; } = at;

        public long Used { get; set; } = used;
    }

    private sealed record Refusal(long Cost, long CountedInWindow, long CountedInFixedWindow);
}
