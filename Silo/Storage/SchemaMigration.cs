using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Bastion.Storage;

/// <summary>One versioned script from <c>Silo/Storage/Migrations/NNNN_name.sql</c>, embedded in the silo assembly.</summary>
public sealed partial record SchemaMigration(int Version, string Name, string Script, string Sha256)
{
    private const string ResourcePrefix = "Bastion.Migrations.";

    /// <summary>All embedded migrations, in version order.</summary>
    public static IReadOnlyList<SchemaMigration> All { get; } = Load();

    private static List<SchemaMigration> Load()
    {
        var assembly = typeof(SchemaMigration).Assembly;
        var migrations = new List<SchemaMigration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(name => name.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            var fileName = resource[ResourcePrefix.Length..];
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
