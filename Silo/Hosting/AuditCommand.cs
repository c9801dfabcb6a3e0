using System.Globalization;
using Bastion.Audit;
using Bastion.Storage;

namespace Bastion.Hosting;

/// <summary>
/// <c>dotnet run --project Silo -- audit verify | export --since TIME | prune | redestroy-erased</c> (docs/audit.md). Exit codes:
/// 0 done (verify: the trail is intact), 1 the trail is broken (verify names the first broken record), 2 bad usage or configuration.
/// </summary>
public static class AuditCommand
{
    private const string Usage = "usage: audit verify | audit export --since <ISO 8601 time> | audit prune | audit redestroy-erased";

    public static async Task<int> RunAsync(string[] args)
    {
        var (verb, since, rest) = args switch
        {
            ["verify", .. var tail] => ("verify", default(DateTimeOffset?), tail),
            ["export", "--since", var time, .. var tail] when DateTimeOffset.TryParse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                => ("export", parsed, tail),
            ["prune", .. var tail] => ("prune", null, tail),
            ["redestroy-erased", .. var tail] => ("redestroy-erased", null, tail),
            _ => (null, null, args),
        };
        if (verb is null)
        {
            await Console.Error.WriteLineAsync(Usage);
            return 2;
        }

        var builder = WebApplication.CreateBuilder(rest);
        var configuration = builder.Configuration;
        var isDevelopment = builder.Environment.IsDevelopment();
        var node = configuration.BindValidated<NodeOptions>(NodeOptions.SectionName);
        var audit = configuration.BindValidated<AuditOptions>(AuditOptions.SectionName);
        var paths = new DevelopmentPaths(Path.GetFullPath(node.DataDirectory, builder.Environment.ContentRootPath));
        using var loggerFactory = LoggerFactory.Create(logging => logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        await using var database = await BastionDatabase.OpenAsync(configuration, isDevelopment, paths.Postgres, loggerFactory.CreateLogger("Bastion.Audit"), CancellationToken.None);

        if (verb == "prune")
        {
            var owner = configuration.GetConnectionString(DatabaseOptions.OwnerConnectionStringName) ?? database.EmbeddedOwnerConnectionString;
            if (string.IsNullOrWhiteSpace(owner))
            {
                await Console.Error.WriteLineAsync($"bastion: audit prune deletes as the schema owner: set ConnectionStrings:{DatabaseOptions.OwnerConnectionStringName}.");
                return 2;
            }

            var cutoff = TimeProvider.System.GetUtcNow() - audit.Retention;
            var deleted = await AuditLedger.PruneAsync(owner, cutoff, CancellationToken.None);
            Console.Out.WriteLine($"pruned {deleted} record(s) sealed before {cutoff:O} (Bastion:Audit:Retention {audit.Retention.TotalDays:0} days); seals are kept.");
            return 0;
        }

        await using var keys = await CommandKeys.OpenAsync(configuration, isDevelopment, paths, loggerFactory);
        if (verb == "verify")
        {
            await using var connection = new Npgsql.NpgsqlConnection(database.RuntimeConnectionString);
            await connection.OpenAsync();
            var result = await AuditVerifier.VerifyAsync(connection, keys.Provider, CancellationToken.None);
            if (!result.Intact)
            {
                await Console.Error.WriteLineAsync($"BROKEN at record {result.BrokenAt}: {result.Problem}");
                return 1;
            }

            Console.Out.WriteLine(result.Records == 0
                ? "intact: the trail holds no records"
                : $"intact: records {result.FirstSeq}..{result.LastSeq} ({result.Records}), {result.Seals} seal(s), newest seal {result.LastSealAt:O}; " +
                  $"head hash {Convert.ToHexStringLower(result.HeadHash!)}");
            return 0;
        }

        using var dataKeys = new DataKeyStore(database.KeyStoreConnectionString, keys.Provider);
        var ledger = new AuditLedger(database.RuntimeConnectionString, dataKeys);
        if (verb == "export")
        {
            var count = await ledger.ExportAsync(since!.Value, Console.Out, CancellationToken.None);
            await Console.Error.WriteLineAsync($"exported {count} record(s) since {since:O}");
            return 0;
        }

        // After a key store was restored from a backup: the keys of users erased since that backup are back. Destroy them again.
        var scopes = await ledger.ReadErasedScopesAsync(CancellationToken.None);
        foreach (var scope in scopes)
        {
            await dataKeys.DestroyAsync(scope, CancellationToken.None);
        }

        await AuditTrail.RecordOnceAsync(database.RuntimeConnectionString, dataKeys, keys.Provider, audit, loggerFactory, new AuditRecord(
            TimeProvider.System.GetUtcNow(), "keys.redestroy-erased", "operator", null, "ok",
            new Dictionary<string, string> { ["scopes"] = scopes.Count.ToString(CultureInfo.InvariantCulture) }));

        Console.Out.WriteLine($"destroyed again the data keys of {scopes.Count} erased user(s) (keys already destroyed stay destroyed).");
        return 0;
    }
}
