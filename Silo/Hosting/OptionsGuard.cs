using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Bastion.Hosting;

internal static class OptionsGuard
{
    /// <summary>
    /// Binds and validates options that start-up needs before the host exists (ports, directories),
    /// failing with a message that names the offending setting.
    /// </summary>
    public static T BindValidated<T>(this IConfiguration configuration, string sectionName)
        where T : class, new()
    {
        var options = new T();
        configuration.GetSection(sectionName).Bind(options);
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
        {
            throw new OptionsValidationException(sectionName, typeof(T),
                [.. results.Select(r => r.ErrorMessage?.Contains(sectionName, StringComparison.Ordinal) == true
                    ? r.ErrorMessage
                    : $"{sectionName}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}")]);
        }

        return options;
    }
}

/// <summary>
/// Validates options at start-up by their own list of problems (<c>Problems()</c>), each naming its setting, so a bad
/// value stops the silo instead of leaving a default silently in force.
/// </summary>
internal sealed class ProblemsValidator<T>(Func<T, IEnumerable<string>> problems) : IValidateOptions<T>
    where T : class
{
    public ValidateOptionsResult Validate(string? name, T options) =>
        problems(options).ToList() is { Count: > 0 } found ? ValidateOptionsResult.Fail(found) : ValidateOptionsResult.Success;
}
