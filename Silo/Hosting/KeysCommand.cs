using Bastion.Audit;
using Bastion.Cluster;
using Bastion.Security;
using Bastion.Storage;

namespace Bastion.Hosting;

/// <summary>
/// <c>dotnet run --project Silo -- keys init | rotate-kek | rewrap | retire-kek N | rotate-signing-key | rotate-hashing-key</c>:
/// creation of the development keyring, before any silo starts (a deployment's init step, so that silos starting together
/// never race to create it), and key rotation of the keyring and the data keys its KEKs wrap (see docs/rotation.md).
/// Exit codes: 0 done, 1 refused (the message says why), 2 bad usage or configuration.
/// </summary>
public static class KeysCommand
{
    private const string Usage = "usage: keys init | keys rotate-kek | keys rewrap | keys retire-kek <version> | keys rotate-signing-key | keys rotate-hashing-key | keys rotate-audit-seal-key";

    public static async Task<int> RunAsync(string[] args)
    {
        var code = await RunVerbAsync(args);
        // init runs before the databases exist, so there is no audit trail to record it in yet.
        if (code is 0 or 1 && args is [var verb, ..] && verb != "init")
        {
            // Every rotation step, done or refused, goes into the audit trail (after it ran: a keyring change cannot wait for it).
            var rest = args.SkipWhile(arg => !arg.StartsWith("--", StringComparison.Ordinal)).ToArray();
            var detail = args is [_, var version, ..] && !version.StartsWith("--", StringComparison.Ordinal) ? new Dictionary<string, string> { ["version"] = version } : null;
            await RecordAsync(rest, "keys." + verb, code == 0 ? "ok" : "refused", detail);
        }

        return code;
    }

    private static async Task RecordAsync(string[] args, string action, string outcome, IReadOnlyDictionary<string, string>? detail)
    {
        var builder = WebApplication.CreateBuilder(args);
        var node = builder.Configuration.BindValidated<NodeOptions>(NodeOptions.SectionName);
        var paths = new DevelopmentPaths(Path.GetFullPath(node.DataDirectory, builder.Environment.ContentRootPath));
        var keys = builder.Configuration.BindValidated<KeyOptions>(KeyOptions.SectionName);
        using var loggerFactory = LoggerFactory.Create(logging => logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        await using var database = await BastionDatabase.OpenAsync(
            builder.Configuration, builder.Environment.IsDevelopment(), paths.Postgres, loggerFactory.CreateLogger("Bastion.Keys"), CancellationToken.None);
        using var keyring = DevelopmentKeyring.LoadOrCreate(keys.KeyringPath ?? paths.Keyring);
        using var dataKeys = new DataKeyStore(database.KeyStoreConnectionString, keyring);
        await AuditTrail.RecordOnceAsync(
            database.RuntimeConnectionString, dataKeys, keyring, builder.Configuration.BindValidated<AuditOptions>(AuditOptions.SectionName), loggerFactory,
            new AuditRecord(TimeProvider.System.GetUtcNow(), action, "operator", null, outcome, detail));
    }

    private static async Task<int> RunVerbAsync(string[] args)
    {
        var (verb, version, rest) = args switch
        {
            ["rotate-kek", .. var tail] => ("rotate-kek", 0, tail),
            ["init", .. var tail] => ("init", 0, tail),
            ["rewrap", .. var tail] => ("rewrap", 0, tail),
            ["rotate-signing-key", .. var tail] => ("rotate-signing-key", 0, tail),
            ["rotate-hashing-key", .. var tail] => ("rotate-hashing-key", 0, tail),
            ["rotate-audit-seal-key", .. var tail] => ("rotate-audit-seal-key", 0, tail),
            ["retire-kek", var number, .. var tail] when int.TryParse(number, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed) && parsed > 0
                => ("retire-kek", parsed, tail),
            _ => (null, 0, args),
        };
        if (verb is null)
        {
            await Console.Error.WriteLineAsync(Usage);
            return 2;
        }

        var builder = WebApplication.CreateBuilder(rest);
        var configuration = builder.Configuration;
        var node = configuration.BindValidated<NodeOptions>(NodeOptions.SectionName);
        var paths = new DevelopmentPaths(Path.GetFullPath(node.DataDirectory, builder.Environment.ContentRootPath));
        var keys = configuration.BindValidated<KeyOptions>(KeyOptions.SectionName);
        if (keys.EffectiveProvider(builder.Environment.IsDevelopment()) != KeyProviderKind.Development)
        {
            await Console.Error.WriteLineAsync(
                "bastion: the keys commands manage the development keyring; with Key Vault, add a secret version (tagged bastion-version) in the vault, then re-wrap with POST /admin/keys/rewrap (see docs/key-vault.md).");
            return 2;
        }

        var keyringPath = keys.KeyringPath ?? paths.Keyring;
        if (verb == "init")
        {
            var existed = File.Exists(keyringPath);
            using var created = DevelopmentKeyring.LoadOrCreate(keyringPath);
            Console.Out.WriteLine(existed ? $"{keyringPath} exists; left as it is." : $"keyring created at {keyringPath} (mode 0600).");
            return 0;
        }

        if (verb == "rotate-kek")
        {
            using var before = DevelopmentKeyring.LoadOrCreate(keyringPath);
            var added = DevelopmentKeyring.AddKek(keyringPath);
            Console.Out.WriteLine($"KEK version {added} added to {keyringPath}; new data keys are wrapped with it from now on (running silos take it up within a second).");
            Console.Out.WriteLine("Next: re-wrap the existing data keys (keys rewrap, or POST /admin/keys/rewrap), then retire the old version.");
            return 0;
        }

        if (verb == "rotate-signing-key")
        {
            using var before = DevelopmentKeyring.LoadOrCreate(keyringPath);
            DevelopmentKeyring.AddSigningKey(keyringPath, TimeProvider.System);
            Console.Out.WriteLine($"signing key added to {keyringPath}; silos sign with it after their next restart, and the older keys keep validating until removed.");
            return 0;
        }

        if (verb == "rotate-hashing-key")
        {
            using var before = DevelopmentKeyring.LoadOrCreate(keyringPath);
            var added = DevelopmentKeyring.AddApiKeyHashingKey(keyringPath);
            Console.Out.WriteLine($"API-key hashing key version {added} added to {keyringPath}; keys issued after the silos' next restart are hashed with it, and every key issued before keeps working.");
            return 0;
        }

        if (verb == "rotate-audit-seal-key")
        {
            using var before = DevelopmentKeyring.LoadOrCreate(keyringPath);
            var added = DevelopmentKeyring.AddAuditSealKey(keyringPath);
            Console.Out.WriteLine($"audit seal key version {added} added to {keyringPath}; silos seal with it after their next restart, and every older version keeps verifying the seals it made.");
            return 0;
        }

        using var loggerFactory = LoggerFactory.Create(logging => logging.AddSimpleConsole());
        await using var database = await BastionDatabase.OpenAsync(
            configuration, builder.Environment.IsDevelopment(), paths.Postgres, loggerFactory.CreateLogger("Bastion.Keys"), CancellationToken.None);
        using var keyring = DevelopmentKeyring.LoadOrCreate(keyringPath);
        using var dataKeys = new DataKeyStore(database.KeyStoreConnectionString, keyring);
        if (verb == "rewrap")
        {
            var lastReported = -1L;
            var total = await dataKeys.RewrapAllAsync(
                (done, count) =>
                {
                    // About every 1 % and the last one, so large stores do not flood the terminal.
                    if (done == count || done - lastReported >= Math.Max(1, count / 100))
                    {
                        lastReported = done;
                        Console.Out.WriteLine($"re-wrapped {done}/{count} data key(s) to KEK version {keyring.CurrentKek.Version}");
                    }
                },
                CancellationToken.None);
            Console.Out.WriteLine($"done: {total} data key(s) were on older KEK versions; none remain.");
            return 0;
        }

        var outcome = await new KeyRotation(dataKeys, keyring).RetireAsync(version, CancellationToken.None);
        switch (outcome.Result)
        {
            case KekRetireResult.Retired:
                Console.Out.WriteLine($"KEK version {version} retired: its key is deleted from {keyringPath}.");
                return 0;
            case KekRetireResult.Current:
                await Console.Error.WriteLineAsync($"bastion: refused: KEK version {version} is the current version; run keys rotate-kek and keys rewrap first.");
                return 1;
            case KekRetireResult.InUse:
                await Console.Error.WriteLineAsync($"bastion: refused: KEK version {version} still wraps {outcome.DataKeys} data key(s); run keys rewrap first.");
                return 1;
            case KekRetireResult.Unused:
                await Console.Error.WriteLineAsync($"bastion: KEK version {version} wraps no data key; disable that version of the secret in Key Vault to retire it.");
                return 1;
            default:
                await Console.Error.WriteLineAsync($"bastion: refused: KEK version {version} is not in the keyring or already retired.");
                return 1;
        }
    }
}
