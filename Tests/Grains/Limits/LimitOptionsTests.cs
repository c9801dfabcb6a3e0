using Bastion.Limits;

namespace Bastion.Tests.Grains.Limits;

/// <summary>The role policies and their validation, against DESIGN.md's figures written out here.</summary>
public sealed class LimitOptionsTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Theory]
    [InlineData(new[] { "user" }, 1)]
    [InlineData(new[] { "data-scientist" }, 2)]
    [InlineData(new[] { "admin" }, 2)]
    [InlineData(new[] { "service" }, 10)]
    [InlineData(new string[0], 1)] // no known role: the user role's limits
    [InlineData(new[] { "root" }, 1)]
    [InlineData(new[] { "user", "service" }, 10)] // the most privileged role's policy
    [InlineData(new[] { "data-scientist", "user" }, 2)]
    public void Defaults_FollowTheRoleTable(string[] roles, int scale)
    {
        var expected = new UserLimits(
            new LimitPolicy(LimitAlgorithm.TokenBucket, 60 * scale, Minute),
            new LimitPolicy(LimitAlgorithm.TokenBucket, 100_000 * scale, Minute),
            4 * scale,
            1_000_000L * scale,
            20_000_000L * scale);
        Assert.Equal(expected, new LimitOptions().For(roles));
    }

    [Fact]
    public void Precedence_IsAdminThenServiceThenDataScientistThenUser()
    {
        var options = new LimitOptions
        {
            Roles = new(StringComparer.Ordinal)
            {
                ["user"] = new() { Concurrency = 1 },
                ["data-scientist"] = new() { Concurrency = 2 },
                ["service"] = new() { Concurrency = 3 },
                ["admin"] = new() { Concurrency = 4 },
            },
        };

        Assert.Equal(4, options.For(["user", "data-scientist", "service", "admin"]).Concurrency);
        Assert.Equal(3, options.For(["user", "data-scientist", "service"]).Concurrency);
        Assert.Equal(2, options.For(["user", "data-scientist"]).Concurrency);
        Assert.Equal(1, options.For(["user"]).Concurrency);
    }

    [Fact]
    public void ARoleWithoutAPolicy_IsUnlimited_AndUnsetFieldsStayUnset()
    {
        var options = new LimitOptions { Roles = new(StringComparer.Ordinal) { ["user"] = new() { DailyTokens = 5 } } };

        Assert.Equal(UserLimits.None, options.For(["admin"]));
        Assert.Equal(new UserLimits(null, null, null, 5, null), options.For(["user"]));
    }

    [Fact]
    public void TheDefaults_HaveNoProblems() => Assert.Empty(new LimitOptions().Problems());

    [Theory]
    [InlineData(0, 60, LimitAlgorithm.TokenBucket)]
    [InlineData(-1, 60, LimitAlgorithm.FixedWindow)]
    [InlineData(1, 0, LimitAlgorithm.SlidingWindow)]
    [InlineData(1, -60, LimitAlgorithm.LeakyBucket)]
    [InlineData(1, 60, (LimitAlgorithm)9)]
    public void ABadPolicy_IsAProblemNamingItsSetting(long limit, int windowSeconds, LimitAlgorithm algorithm)
    {
        var bad = new PolicyOptions { Algorithm = algorithm, Limit = limit, Window = TimeSpan.FromSeconds(windowSeconds) };

        var requests = new LimitOptions { Roles = new(StringComparer.Ordinal) { ["user"] = new() { Requests = bad } } };
        var tokens = new LimitOptions { Roles = new(StringComparer.Ordinal) { ["service"] = new() { Tokens = bad } } };

        Assert.Equal("Bastion:Limits:Roles:user:Requests", Assert.Single(requests.Problems()).Split(' ')[0]);
        Assert.Equal("Bastion:Limits:Roles:service:Tokens", Assert.Single(tokens.Problems()).Split(' ')[0]);
    }

    [Fact]
    public void WindowBounds_OneTickToTenYears()
    {
        Assert.Empty(Policy(1, TimeSpan.FromTicks(1)).Problems());
        Assert.Empty(Policy(1, TimeSpan.FromDays(3660)).Problems());
        Assert.Single(Policy(1, TimeSpan.FromDays(3660) + TimeSpan.FromTicks(1)).Problems());
        Assert.Empty(Policy(1, Minute).Problems());

        static LimitOptions Policy(long limit, TimeSpan window) => new()
        {
            Roles = new(StringComparer.Ordinal) { ["user"] = new() { Tokens = new() { Algorithm = LimitAlgorithm.TokenBucket, Limit = limit, Window = window } } },
        };
    }

    [Theory]
    [InlineData(0, null, null)]
    [InlineData(null, 0L, null)]
    [InlineData(null, null, 0L)]
    [InlineData(-3, null, null)]
    public void NonPositiveCounts_AreProblems(int? concurrency, long? daily, long? monthly)
    {
        var options = new LimitOptions
        {
            Roles = new(StringComparer.Ordinal) { ["admin"] = new() { Concurrency = concurrency, DailyTokens = daily, MonthlyTokens = monthly } },
        };

        Assert.StartsWith("Bastion:Limits:Roles:admin:", Assert.Single(options.Problems()), StringComparison.Ordinal);
    }

    [Fact]
    public void CountsOfOne_AreFine()
    {
        var options = new LimitOptions
        {
            Roles = new(StringComparer.Ordinal) { ["admin"] = new() { Concurrency = 1, DailyTokens = 1, MonthlyTokens = 1 } },
        };

        Assert.Empty(options.Problems());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void ANonPositiveLeaseDuration_IsAProblem(int minutes)
    {
        var options = new LimitOptions { LeaseDuration = TimeSpan.FromMinutes(minutes) };
        Assert.Equal("Bastion:Limits:LeaseDuration must be positive.", Assert.Single(options.Problems()));
    }

    [Fact]
    public void EveryProblem_IsReported()
    {
        var options = new LimitOptions
        {
            LeaseDuration = TimeSpan.Zero,
            Roles = new(StringComparer.Ordinal)
            {
                ["user"] = new() { Requests = new() { Limit = 0, Window = Minute }, Concurrency = 0 },
                ["service"] = new() { Tokens = new() { Limit = 0, Window = Minute } },
            },
        };

        Assert.Equal(4, options.Problems().Count());
    }
}
