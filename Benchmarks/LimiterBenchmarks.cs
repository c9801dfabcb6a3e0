using BenchmarkDotNet.Attributes;
using Bastion.Limits;

namespace Bastion.Benchmarks;

/// <summary>
/// One admission decision per algorithm against a warm state, as the user grain makes it on every request. The clock
/// advances a little each call so buckets refill, windows roll over and the sliding log prunes, as in production.
/// </summary>
[MemoryDiagnoser]
public class LimiterBenchmarks
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(7);

    private readonly LimitPolicy tokenBucket = new(LimitAlgorithm.TokenBucket, 100, TimeSpan.FromMinutes(1));
    private readonly LimitPolicy leakyBucket = new(LimitAlgorithm.LeakyBucket, 100, TimeSpan.FromMinutes(1));
    private readonly LimitPolicy fixedWindow = new(LimitAlgorithm.FixedWindow, 100, TimeSpan.FromSeconds(1));
    private readonly LimitPolicy slidingWindow = new(LimitAlgorithm.SlidingWindow, 100, TimeSpan.FromSeconds(1));
    private readonly LimiterState tokenBucketState = new();
    private readonly LimiterState leakyBucketState = new();
    private readonly LimiterState fixedWindowState = new();
    private readonly LimiterState slidingWindowState = new();
    private DateTimeOffset now = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    [Benchmark]
    public LimitDecision TokenBucket() => RateLimiter.TryAcquire(tokenBucket, tokenBucketState, 1, now += Step);

    [Benchmark]
    public LimitDecision LeakyBucket() => RateLimiter.TryAcquire(leakyBucket, leakyBucketState, 1, now += Step);

    [Benchmark]
    public LimitDecision FixedWindow() => RateLimiter.TryAcquire(fixedWindow, fixedWindowState, 1, now += Step);

    [Benchmark]
    public LimitDecision SlidingWindow() => RateLimiter.TryAcquire(slidingWindow, slidingWindowState, 1, now += Step);
}
