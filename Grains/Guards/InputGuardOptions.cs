using Bastion.Access;

namespace Bastion.Guards;

/// <summary>What an input check does when it matches: nothing, record it (audit and metrics), or refuse the request.</summary>
public enum InputGuardMode
{
    Off,
    Flag,
    Block,
}

/// <summary>
/// The input guard (<c>Bastion:Guards:Input</c>, docs/guards.md): per role, the most prompt tokens and the mode of each
/// check; and the prompt-injection rules. A user with several roles is judged by the most privileged one, as limits are.
/// </summary>
public sealed class InputGuardOptions
{
    public const string SectionName = "Bastion:Guards:Input";

    /// <summary>The check that caps a prompt's tokens.</summary>
    public const string PromptCap = "prompt-cap";

    /// <summary>The prompt-injection heuristics (<see cref="InjectionHeuristics"/>).</summary>
    public const string Injection = InjectionHeuristics.CheckName;

    private static readonly string[] Precedence = [Access.Roles.Admin, Access.Roles.Service, Access.Roles.DataScientist, Access.Roles.User];

    /// <summary>The policy for each role; a user with no known role gets the user role's.</summary>
    public Dictionary<string, InputPolicy> Roles { get; set; } = new(StringComparer.Ordinal)
    {
        [Access.Roles.User] = new() { PromptTokenCap = 4_096 },
        [Access.Roles.DataScientist] = new() { PromptTokenCap = 16_384 },
        [Access.Roles.Service] = new() { PromptTokenCap = 16_384 },
        // Administrators try attacks on purpose (red-teaming): their injection hits are recorded, not refused.
        [Access.Roles.Admin] = new() { PromptTokenCap = 16_384, Modes = new(StringComparer.Ordinal) { [PromptCap] = InputGuardMode.Block, [Injection] = InputGuardMode.Flag } },
    };

    /// <summary>The prompt-injection heuristics' threshold and rules.</summary>
    public InjectionOptions InjectionRules { get; set; } = new();

    /// <summary>The policy for a user holding <paramref name="roles"/>.</summary>
    public InputPolicy For(IReadOnlyCollection<string> roles)
    {
        var role = Precedence.FirstOrDefault(roles.Contains) ?? Access.Roles.User;
        return Roles.TryGetValue(role, out var policy) ? policy : Roles[Access.Roles.User];
    }

    /// <summary>Every problem with the configured options, each naming its setting.</summary>
    public IEnumerable<string> Problems()
    {
        if (!Roles.ContainsKey(Access.Roles.User))
        {
            yield return $"{SectionName}:Roles:{Access.Roles.User} is required: it is the policy of a user without a known role.";
        }

        foreach (var (role, policy) in Roles)
        {
            if (!RolePermissions.IsKnown(role))
            {
                yield return $"{SectionName}:Roles:{role} is not a known role.";
            }

            if (policy.PromptTokenCap < 1)
            {
                yield return $"{SectionName}:Roles:{role}:PromptTokenCap must be at least 1.";
            }

            foreach (var (check, mode) in policy.Modes)
            {
                if (!InputGuard.Checks.Contains(check))
                {
                    yield return $"{SectionName}:Roles:{role}:Modes:{check} is not a check; the checks are {string.Join(", ", InputGuard.Checks)}.";
                }
                else if (!Enum.IsDefined(mode))
                {
                    yield return $"{SectionName}:Roles:{role}:Modes:{check} must be Off, Flag or Block.";
                }
            }
        }

        foreach (var problem in InjectionRules.Problems($"{SectionName}:{nameof(InjectionRules)}"))
        {
            yield return problem;
        }
    }
}

/// <summary>One role's input policy.</summary>
public sealed class InputPolicy
{
    /// <summary>The most tokens a prompt (the rendered chat, or the prompt text) may have.</summary>
    public int PromptTokenCap { get; set; } = 4_096;

    /// <summary>The mode of each check, by its name; a check not named here is off.</summary>
    public Dictionary<string, InputGuardMode> Modes { get; set; } = new(StringComparer.Ordinal)
    {
        [InputGuardOptions.PromptCap] = InputGuardMode.Block,
        [InputGuardOptions.Injection] = InputGuardMode.Block,
    };

    public InputGuardMode ModeOf(string check) => Modes.GetValueOrDefault(check, InputGuardMode.Off);
}

/// <summary>The prompt-injection heuristics: a scored list of patterns; a prompt whose matched rules add up to the threshold is a hit.</summary>
public sealed class InjectionOptions
{
    /// <summary>The summed score of the matched rules at which a prompt counts as an injection attempt.</summary>
    public double Threshold { get; set; } = 1.0;

    /// <summary>Rules added to the built-in ones (<see cref="InjectionHeuristics.BuiltIn"/>); a rule with a built-in name replaces it.</summary>
    public List<InjectionRule> Rules { get; set; } = [];

    /// <summary>Built-in rules turned off, by name.</summary>
    public List<string> Disabled { get; set; } = [];

    internal IEnumerable<string> Problems(string prefix)
    {
        if (Threshold is <= 0 or > 100 || double.IsNaN(Threshold))
        {
            yield return $"{prefix}:Threshold must be above 0 and at most 100.";
        }

        for (var i = 0; i < Rules.Count; i++)
        {
            var rule = Rules[i];
            if (string.IsNullOrWhiteSpace(rule.Name) || rule.Score is <= 0 or > 100 || double.IsNaN(rule.Score))
            {
                yield return $"{prefix}:Rules:{i} needs a Name and a Score above 0 and at most 100.";
            }

            if (InjectionHeuristics.Compile(rule.Pattern) is null)
            {
                yield return $"{prefix}:Rules:{i}:Pattern is not a regular expression the guard can run (no backreferences or lookarounds).";
            }
        }

        foreach (var name in Disabled.Where(name => InjectionHeuristics.BuiltIn.All(rule => rule.Name != name)))
        {
            yield return $"{prefix}:Disabled names '{name}', which is not a built-in rule.";
        }
    }
}

/// <summary>A pattern and what it adds to a prompt's injection score.</summary>
public sealed class InjectionRule
{
    public string Name { get; set; } = string.Empty;

    /// <summary>A .NET regular expression, matched case-insensitively against the normalized prompt.</summary>
    public string Pattern { get; set; } = string.Empty;

    public double Score { get; set; }
}
