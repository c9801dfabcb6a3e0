namespace Bastion.Access;

/// <summary>The role names Bastion knows. Anything else is refused when assigned.</summary>
public static class Roles
{
    /// <summary>Runs completions and reads its own usage.</summary>
    public const string User = "user";

    /// <summary>A user who may also list and load models.</summary>
    public const string DataScientist = "data-scientist";

    /// <summary>A backend service that acts on behalf of users through the client library.</summary>
    public const string Service = "service";

    /// <summary>Everything, including user and key management.</summary>
    public const string Admin = "admin";

    /// <summary>Every known role.</summary>
    public static IReadOnlyList<string> All { get; } = [User, DataScientist, Service, Admin];
}
