namespace Bastion.Storage;

/// <summary>
/// The migrations of one Bastion database. The state database (Orleans tables, grain state) and the
/// key store (wrapped data keys) are separate databases with separate roles, so that no backup of the
/// state database ever holds a key; each has its own history table and version.
/// </summary>
public sealed class SchemaMigrationSet
{
    private SchemaMigrationSet(string name, string resourcePrefix, string ownerSetting, bool holdsKeys)
    {
        Name = name;
        Migrations = SchemaMigration.Load(resourcePrefix);
        OwnerSetting = ownerSetting;
        HoldsKeys = holdsKeys;
    }

    /// <summary>Orleans clustering, grain state and reminders (<c>Silo/Storage/Migrations/</c>).</summary>
    public static SchemaMigrationSet State { get; } = new("state", "Bastion.Migrations.", "ConnectionStrings:BastionOwner", holdsKeys: false);

    /// <summary>Wrapped data keys (<c>Silo/Storage/KeyStoreMigrations/</c>), schema <see cref="SchemaMigrator.KeyStoreSchema"/>.</summary>
    public static SchemaMigrationSet KeyStore { get; } = new("key store", "Bastion.KeyStoreMigrations.", "ConnectionStrings:BastionKeysOwner", holdsKeys: true);

    /// <summary>How messages name this database ("state", "key store").</summary>
    public string Name { get; }

    /// <summary>The embedded scripts, in version order.</summary>
    public IReadOnlyList<SchemaMigration> Migrations { get; }

    /// <summary>The setting that holds the owner's connection string, named in "behind" errors.</summary>
    public string OwnerSetting { get; }

    /// <summary>The version this build expects: the highest embedded migration.</summary>
    public int ExpectedVersion => Migrations.Count == 0 ? 0 : Migrations[^1].Version;

    /// <summary>Whether this is the key store, whose runtime role may create, read and destroy keys but never delete rows.</summary>
    internal bool HoldsKeys { get; }

    public override string ToString() => Name;
}
