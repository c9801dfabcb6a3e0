namespace Bastion.Limits;

/// <summary>
/// Limits per role (<c>Bastion:Limits:Roles:&lt;role&gt;</c>), which admins can override per user. A user
/// with several roles gets the policy of the most privileged one (admin, service, data-scientist, user).
/// </summary>
public sealed class LimitOptions
{
    public const string SectionName = "Bastion:Limits";

    private static readonly string[] Precedence = [Access.Roles.Admin, Access.Roles.Service, Access.Roles.DataScientist, Access.Roles.User];

    /// <summary>How long a concurrency slot is held when its generation never settles.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(10);

    public Dictionary<string, RoleLimitOptions> Roles { get; set; } = new(StringComparer.Ordinal)
    {
        [Access.Roles.User] = RoleLimitOptions.Standard(1),
        [Access.Roles.DataScientist] = RoleLimitOptions.Standard(2),
        [Access.Roles.Service] = RoleLimitOptions.Standard(10),
        [Access.Roles.Admin] = RoleLimitOptions.Standard(2),
    };

    /// <summary>The limits for a user holding <paramref name="roles"/>; a user with no known role gets the user role's.</summary>
    public UserLimits For(IReadOnlyCollection<string> roles)
    {
        var role = Precedence.FirstOrDefault(roles.Contains) ?? Access.Roles.User;
        return Roles.TryGetValue(role, out var limits) ? limits.ToUserLimits() : UserLimits.None;
    }

    /// <summary>Every problem with the configured policies, each naming its setting.</summary>
    public IEnumerable<string> Problems()
    {
        if (LeaseDuration <= TimeSpan.Zero)
        {
            yield return $"{SectionName}:LeaseDuration must be positive.";
        }

        foreach (var (role, limits) in Roles)
        {
            foreach (var problem in limits.Problems($"{SectionName}:Roles:{role}"))
            {
                yield return problem;
            }
        }
    }
}

/// <summary>One role's limits; any left unset are unlimited.</summary>
public sealed class RoleLimitOptions
{
    public PolicyOptions? Requests { get; set; }
    public PolicyOptions? Tokens { get; set; }
    public int? Concurrency { get; set; }
    public long? DailyTokens { get; set; }
    public long? MonthlyTokens { get; set; }

    /// <summary>DESIGN.md's example policy, scaled.</summary>
    internal static RoleLimitOptions Standard(int scale) => new()
    {
        Requests = new() { Algorithm = LimitAlgorithm.TokenBucket, Limit = 60 * scale, Window = TimeSpan.FromMinutes(1) },
        Tokens = new() { Algorithm = LimitAlgorithm.TokenBucket, Limit = 100_000 * scale, Window = TimeSpan.FromMinutes(1) },
        Concurrency = 4 * scale,
        DailyTokens = 1_000_000L * scale,
        MonthlyTokens = 20_000_000L * scale,
    };

    internal UserLimits ToUserLimits() => new(Requests?.ToPolicy(), Tokens?.ToPolicy(), Concurrency, DailyTokens, MonthlyTokens);

    internal IEnumerable<string> Problems(string prefix)
    {
        foreach (var (name, policy) in new[] { ("Requests", Requests), ("Tokens", Tokens) })
        {
            if (policy is not null && (policy.Limit < 1 || policy.Window <= TimeSpan.Zero || policy.Window > LimitPolicy.MaxWindow || !Enum.IsDefined(policy.Algorithm)))
            {
                yield return $"{prefix}:{name} needs an algorithm, a Limit of at least 1 and a Window between 0 and {LimitPolicy.MaxWindow.TotalDays} days.";
            }
        }

        if (Concurrency is < 1 || DailyTokens is < 1 || MonthlyTokens is < 1)
        {
            yield return $"{prefix}: Concurrency, DailyTokens and MonthlyTokens must be at least 1 when set.";
        }
    }
}

/// <summary>A bindable <see cref="LimitPolicy"/>.</summary>
public sealed class PolicyOptions
{
    public LimitAlgorithm Algorithm { get; set; }
    public long Limit { get; set; }
    public TimeSpan Window { get; set; }

    internal LimitPolicy ToPolicy() => new(Algorithm, Limit, Window);
}
