namespace Bastion.Access;

/// <summary>
/// What a caller may do. Every HTTP route and every user-facing grain method declares exactly one;
/// roles grant sets of them, and anything not granted is denied.
/// </summary>
public enum Permission
{
    /// <summary>Run completions.</summary>
    Infer = 1,

    /// <summary>List the models a silo serves.</summary>
    ListModels = 2,

    /// <summary>Read one's own profile and usage.</summary>
    ReadOwnUsage = 3,

    /// <summary>Load or unload models.</summary>
    LoadModels = 4,

    /// <summary>Act on behalf of users through the client library.</summary>
    ActOnBehalfOfUsers = 5,

    /// <summary>Create and change users, their keys, roles and limits.</summary>
    ManageUsers = 6,

    /// <summary>Read the silo's metrics (<c>GET /metrics</c>).</summary>
    ReadMetrics = 7,

    /// <summary>Rotate, re-wrap and retire the keys that protect stored state.</summary>
    ManageKeys = 8,
}
