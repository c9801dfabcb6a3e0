using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Bastion.Storage;

/// <summary>
/// One versioned script, embedded in the silo assembly: <c>Silo/Storage/Migrations/NNNN_name.sql</c>
/// for the state database, <c>Silo/Storage/KeyStoreMigrations/NNNN_name.sql</c> for the key store.
/// </summary>
public sealed partial record SchemaMigration(int Version, string Name, string Script, string Sha256)
{
    /// <summary>All embedded migrations of the state database, in version order.</summary>
    public static IReadOnlyList<SchemaMigration> All => SchemaMigrationSet.State.Migrations;

    internal static List<SchemaMigration> Load(string resourcePrefix)
    {
        var assembly = typeof(SchemaMigration).Assembly;
        var migrations = new List<SchemaMigration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(name => name.StartsWith(resourcePrefix, StringComparison.Ordinal)))
        {
            var fileName = resource[resourcePrefix.Length..];
            var match = FileNamePattern().Match(fileName);
            if (!match.Success)
            {
                throw new InvalidOperationException($"Migration {fileName} is not named NNNN_name.sql.");
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            var bytes = memory.ToArray();
            using var reader = new StreamReader(new MemoryStream(bytes));
            migrations.Add(new SchemaMigration(
                int.Parse(match.Groups["version"].Value, NumberStyles.None, CultureInfo.InvariantCulture),
                match.Groups["name"].Value,
                reader.ReadToEnd(),
                Convert.ToHexStringLower(SHA256.HashData(bytes))));
        }

        migrations.Sort((left, right) => left.Version.CompareTo(right.Version));
        var duplicate = migrations.GroupBy(m => m.Version).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException($"Two migrations share version {duplicate.Key}.");
        }

        return migrations;
    }

    [GeneratedRegex(@"^(?<version>\d{4})_(?<name>[a-z0-9_]+)\.sql$")]
    private static partial Regex FileNamePattern();
}
