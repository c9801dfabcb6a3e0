using System.Collections.Frozen;

namespace Bastion.Access;

/// <summary>Which permissions each role grants. Deny by default: an unknown role grants nothing.</summary>
public static class RolePermissions
{
    private static readonly FrozenDictionary<string, FrozenSet<Permission>> Grants = new Dictionary<string, FrozenSet<Permission>>
    {
        [Roles.User] = new[] { Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage }.ToFrozenSet(),
        [Roles.DataScientist] = new[] { Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage, Permission.LoadModels }.ToFrozenSet(),
        [Roles.Service] = new[] { Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage, Permission.ActOnBehalfOfUsers }.ToFrozenSet(),
        [Roles.Admin] = Enum.GetValues<Permission>().ToFrozenSet(),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>True when any of <paramref name="roles"/> grants <paramref name="permission"/>.</summary>
    public static bool Allows(IEnumerable<string> roles, Permission permission) =>
        roles.Any(role => Grants.TryGetValue(role, out var granted) && granted.Contains(permission));

    /// <summary>True when <paramref name="role"/> is a role Bastion knows.</summary>
    public static bool IsKnown(string role) => Grants.ContainsKey(role);
}
