namespace Bastion;

/// <summary>Names of the grain storage providers the silo registers.</summary>
public static class StorageNames
{
    /// <summary>The encrypted-at-rest store for all Bastion grain state.</summary>
    public const string Bastion = "bastion";
}
