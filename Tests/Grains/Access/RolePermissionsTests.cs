using Bastion.Access;

namespace Bastion.Tests.Grains.Access;

/// <summary>What each role grants, from a table written here (DESIGN.md's role table), never from the product's.</summary>
public sealed class RolePermissionsTests
{
    // role, then the permissions it grants; everything else is denied.
    private static readonly Dictionary<string, Permission[]> Spec = new(StringComparer.Ordinal)
    {
        ["user"] = [Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage],
        ["data-scientist"] = [Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage, Permission.LoadModels],
        ["service"] = [Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage, Permission.ActOnBehalfOfUsers],
        ["admin"] =
        [
            Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage, Permission.LoadModels,
            Permission.ActOnBehalfOfUsers, Permission.ManageUsers, Permission.ReadMetrics, Permission.ManageKeys,
        ],
    };

    private static readonly Permission[] Every =
    [
        Permission.Infer, Permission.ListModels, Permission.ReadOwnUsage, Permission.LoadModels,
        Permission.ActOnBehalfOfUsers, Permission.ManageUsers, Permission.ReadMetrics, Permission.ManageKeys,
    ];

    public static TheoryData<string, Permission, bool> Matrix()
    {
        var data = new TheoryData<string, Permission, bool>();
        foreach (var (role, granted) in Spec)
        {
            foreach (var permission in Every)
            {
                data.Add(role, permission, granted.Contains(permission));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public void EachRole_GrantsExactlyItsPermissions(string role, Permission permission, bool allowed) =>
        Assert.Equal(allowed, RolePermissions.Allows([role], permission));

    [Fact]
    public void EveryPermission_IsInTheTable() =>
        Assert.Equal(Every.Order(), Enum.GetValues<Permission>().Order());

    [Theory]
    [InlineData("Admin")]
    [InlineData("admin ")]
    [InlineData("root")]
    [InlineData("")]
    public void UnknownRoles_GrantNothing_AndAreNotKnown(string role)
    {
        Assert.False(RolePermissions.IsKnown(role));
        Assert.All(Every, permission => Assert.False(RolePermissions.Allows([role], permission)));
    }

    [Fact]
    public void KnownRoles_AreExactlyTheTable()
    {
        Assert.All(Spec.Keys, role => Assert.True(RolePermissions.IsKnown(role)));
        Assert.Equal(Spec.Keys.Order(StringComparer.Ordinal), Roles.All.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void SeveralRoles_GrantTheUnion_AndNoRolesGrantNothing()
    {
        Assert.True(RolePermissions.Allows(["user", "service"], Permission.ActOnBehalfOfUsers));
        Assert.True(RolePermissions.Allows(["root", "data-scientist"], Permission.LoadModels));
        Assert.False(RolePermissions.Allows(["user", "data-scientist"], Permission.ManageUsers));
        Assert.All(Every, permission => Assert.False(RolePermissions.Allows([], permission)));
    }
}
