using System.CommandLine;
using Azure.Security.KeyVault.Secrets;
using Bastion.Client;
using Bastion.Cluster;

namespace Bastion.Cli;

/// <summary>
/// <c>bastion keys kek list | rewrap [--wait] | retire N [--vault-uri …] | rotate --vault-uri … [--signing]</c>: KEK
/// rotation through the facade (needs <c>manage keys</c>, i.e. the <c>admin</c> role), and the Key Vault steps silos
/// cannot do because they only read the vault (docs/rotation.md).
/// </summary>
internal static class KekCommands
{
    public delegate Func<ParseResult, CancellationToken, Task<int>> Runner(Func<ParseResult, BastionClient, CancellationToken, Task> action);

    public delegate Func<ParseResult, CancellationToken, Task<int>> OfflineRunner(Func<ParseResult, CancellationToken, Task> action);

    public static Command Build(Runner run, OfflineRunner runOffline, Func<Uri, SecretClient> vaults, TimeSpan pollInterval, TextWriter output)
    {
        var list = new Command("list", "List KEK versions with the live data keys each wraps.");
        list.SetAction(run(async (_, client, token) =>
        {
            foreach (var kek in await client.ListKeksAsync(token))
            {
                await output.WriteLineAsync(
                    $"version {kek.Version}  data keys: {kek.DataKeys}{(kek.Current ? "  current" : "")}{(kek.Available ? "" : "  UNAVAILABLE (the key provider lacks it)")}");
            }
        }));

        var wait = new Option<bool>("--wait") { Description = "Print progress until no data key is left on an older version." };
        var rewrap = new Command("rewrap", "Re-wrap every data key on an older KEK version with the current one (in the background on the gateway silo).") { wait };
        rewrap.SetAction(run(async (result, client, token) =>
        {
            var start = await client.StartKekRewrapAsync(token);
            await output.WriteLineAsync(start.Started
                ? $"re-wrap started to KEK version {start.Status.CurrentKekVersion}; {start.Status.Remaining} data key(s) on older versions"
                : $"a re-wrap is already running to KEK version {start.Status.CurrentKekVersion}; {start.Status.Remaining} data key(s) on older versions");
            if (!result.GetValue(wait))
            {
                await output.WriteLineAsync("follow it with: bastion keys kek rewrap --wait");
                return;
            }

            var status = start.Status;
            while (true)
            {
                switch (status)
                {
                    case { State: KekRewrapState.Failed }:
                        throw new CommandFailedException($"the re-wrap failed: {status.Error} (start it again once the cause is fixed)");
                    case { State: not KekRewrapState.Running, Remaining: 0 }:
                        await output.WriteLineAsync($"done: no data key is left on a version below {status.CurrentKekVersion}");
                        return;
                    case { State: KekRewrapState.Done }:
                        // A newer KEK became current during the run (or an earlier run answered): another run moves the rest.
                        throw new CommandFailedException($"the re-wrap finished but {status.Remaining} data key(s) remain below version {status.CurrentKekVersion}; run it again");
                }

                await Task.Delay(pollInterval, token);
                status = await client.GetKekRewrapStatusAsync(token);
                await output.WriteLineAsync($"re-wrapped {status.Done}/{status.Total}; {status.Remaining} remaining");
            }
        }));

        var vaultUri = VaultUriOption(required: false);
        var secret = new Option<string?>("--secret") { Description = $"The KEK secret's name (default {VaultKeys.KekSecret})." };
        var version = new Argument<int>("version") { Description = "The KEK version number." };
        var retire = new Command("retire", "Retire a KEK version once no data key uses it; with --vault-uri, then disable that version in Key Vault.") { version, vaultUri, secret };
        retire.SetAction(run(async (result, client, token) =>
        {
            var number = result.GetValue(version);
            var retirement = await client.RetireKekAsync(number, token);
            var vault = result.GetValue(vaultUri);
            switch (retirement.Result)
            {
                case KekRetireResult.Current:
                    throw Refused($"KEK version {number} is the current version; rotate to a new one and re-wrap before retiring it.");
                case KekRetireResult.InUse:
                    throw Refused($"KEK version {number} still wraps {retirement.DataKeys} data key(s); run bastion keys kek rewrap --wait first.");
                case KekRetireResult.Unused when vault is null:
                    throw Refused($"KEK version {number} wraps no data key, but the cluster's keys are in Key Vault: run this again with --vault-uri to disable it there.");
                case KekRetireResult.NotFound when vault is null:
                    throw new ServiceRefusedException(ServiceRefusal.NotFound, $"KEK version {number} does not exist or is already retired.");
                case KekRetireResult.Retired when vault is null:
                    await output.WriteLineAsync($"KEK version {number} retired");
                    return;
            }

            // The cluster found nothing wrapped with it (or has already dropped it): now the vault.
            var name = result.GetValue(secret) ?? VaultKeys.KekSecret;
            var keys = new VaultKeys(vaults(vault!));
            if (retirement.Result == KekRetireResult.NotFound && await keys.IsEnabledAsync(name, number, token))
            {
                throw Refused($"the cluster does not know KEK version {number} yet, so it cannot tell whether data keys use it; retry once the silos have refreshed their keys.");
            }

            switch (await keys.DisableAsync(name, number, token))
            {
                case DisableResult.Disabled:
                    await output.WriteLineAsync($"KEK version {number} disabled in {name}; silos drop it at their next key refresh");
                    break;
                case DisableResult.AlreadyDisabled:
                    await output.WriteLineAsync($"KEK version {number} of {name} is already disabled");
                    break;
                default:
                    throw new ServiceRefusedException(ServiceRefusal.NotFound, $"no version of {name} is tagged {VaultKeys.VersionTag}={number}.");
            }
        }));

        var requiredVaultUri = VaultUriOption(required: true);
        var rotatedSecret = new Option<string?>("--secret") { Description = $"The secret's name (default {VaultKeys.KekSecret}, or {VaultKeys.SigningSecret} with --signing)." };
        var signing = new Option<bool>("--signing") { Description = "Add a signing key (PKCS#8 EC P-256 PEM) instead of a KEK." };
        var rotate = new Command("rotate", "Add a new version of the KEK (or with --signing, the signing key) in Key Vault, numbered one above every existing version.")
        {
            requiredVaultUri, rotatedSecret, signing,
        };
        rotate.SetAction(runOffline(async (result, token) =>
        {
            var isSigning = result.GetValue(signing);
            var name = result.GetValue(rotatedSecret) ?? (isSigning ? VaultKeys.SigningSecret : VaultKeys.KekSecret);
            var number = await new VaultKeys(vaults(result.GetValue(requiredVaultUri)!)).AddVersionAsync(name, isSigning, token);
            await output.WriteLineAsync($"{(isSigning ? "signing key" : "KEK")} version {number} added to {name}");
            await output.WriteLineAsync(isSigning
                ? "silos validate with it after their next key refresh and sign with it once every silo has had time to read it."
                : "silos wrap new data keys with it once every silo has had time to read it (2 x RefreshInterval); then run: bastion keys kek rewrap --wait");
        }));

        return new Command("kek", "Rotate, re-wrap and retire key-encryption keys.") { list, rewrap, retire, rotate };
    }

    private static Option<Uri?> VaultUriOption(bool required) => new("--vault-uri")
    {
        Description = "The Key Vault, https://<vault>.vault.azure.net/ (your Azure login needs Key Vault Secrets Officer).",
        Required = required,
        CustomParser = argument =>
        {
            var text = argument.Tokens.Single().Value;
            if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps)
            {
                return uri;
            }

            argument.AddError("--vault-uri must be an absolute https:// URI.");
            return null;
        },
    };

    private static ServiceRefusedException Refused(string message) => new(ServiceRefusal.Conflict, message);
}
