using System.CommandLine;
using Azure;
using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using Bastion.Client;
using Bastion.Cluster;
using Bastion.Limits;
using Microsoft.Extensions.Options;

namespace Bastion.Cli;

/// <summary>
/// The <c>bastion</c> operator commands: users, keys, roles, limits, suspension, revocation and cluster status, each
/// one call of <see cref="BastionClient"/> (the operator's service needs the <c>admin</c> role), and KEK rotation
/// (<see cref="KekCommands"/>). Exit codes: 0 done, 1 failed (a vault error, a failed re-wrap), 2 refused (the message
/// says why), 3 invalid client configuration.
/// </summary>
internal static class OperatorCommands
{
    private static readonly Dictionary<string, LimitAlgorithm> Algorithms = new(StringComparer.Ordinal)
    {
        ["token_bucket"] = LimitAlgorithm.TokenBucket,
        ["leaky_bucket"] = LimitAlgorithm.LeakyBucket,
        ["fixed_window"] = LimitAlgorithm.FixedWindow,
        ["sliding_window"] = LimitAlgorithm.SlidingWindow,
    };

    public static RootCommand Build(
        Func<Task<BastionClient>> connect, TextWriter output, TextWriter errors, Func<Uri, SecretClient>? vaults = null, TimeSpan? pollInterval = null)
    {
        var user = new Argument<string>("user") { Description = "The user id." };
        var roles = new Option<string[]>("--role") { Description = "A role (repeat for several): user, data-scientist, service, admin.", Required = true, AllowMultipleArgumentsPerToken = true };

        var createUser = new Command("create", "Create a user.") { user, roles };
        createUser.SetAction(Run(async (result, client, token) =>
        {
            await client.CreateUserAsync(result.GetValue(user)!, result.GetValue(roles)!, token);
            await output.WriteLineAsync($"created {result.GetValue(user)}");
        }));
        var showUser = new Command("show", "Show a user's roles, keys, usage and suspension.") { user };
        showUser.SetAction(Run(async (result, client, token) =>
        {
            if (await client.GetUserAsync(result.GetValue(user)!, token) is not { } profile)
            {
                throw new ServiceRefusedException(ServiceRefusal.NotFound, "No user with this id exists.");
            }

            await output.WriteLineAsync($"roles: {string.Join(",", profile.Roles)}");
            await output.WriteLineAsync($"suspended: {profile.Suspended}");
            await output.WriteLineAsync($"requests: {profile.Requests}, prompt tokens: {profile.Usage.PromptTokens}, completion tokens: {profile.Usage.CompletionTokens}");
            foreach (var key in profile.ApiKeys)
            {
                await output.WriteLineAsync($"key {key.Id} '{key.Label}' created {key.CreatedAt:u}{(key.ExpiresAt is { } at ? $" expires {at:u}" : "")}{(key.Revoked ? " revoked" : "")}");
            }
        }));
        var users = new Command("users", "Manage users.") { createUser, showUser };

        var label = new Option<string>("--label") { Description = "A label for the key.", DefaultValueFactory = _ => "" };
        var expires = new Option<int?>("--expires-in-days") { Description = "Days until the key expires." };
        var issue = new Command("issue", "Issue an API key (printed once).") { user, label, expires };
        issue.SetAction(Run(async (result, client, token) =>
        {
            var key = await client.IssueApiKeyAsync(result.GetValue(user)!, result.GetValue(label)!, result.GetValue(expires), token);
            await output.WriteLineAsync($"id: {key.KeyId}");
            await output.WriteLineAsync($"api_key: {key.ApiKey}");
        }));
        var keyId = new Argument<string>("key-id") { Description = "The API key id." };
        var revokeKey = new Command("revoke", "Revoke an API key and the tokens exchanged for it.") { user, keyId };
        revokeKey.SetAction(Run(async (result, client, token) =>
        {
            await client.RevokeApiKeyAsync(result.GetValue(user)!, result.GetValue(keyId)!, token);
            await output.WriteLineAsync("revoked");
        }));
        var kek = KekCommands.Build(
            action => Run(action), action => Guarded(action), vaults ?? (uri => new SecretClient(uri, new DefaultAzureCredential())), pollInterval ?? TimeSpan.FromSeconds(1), output);
        var keys = new Command("keys", "Issue and revoke API keys; rotate key-encryption keys.") { issue, revokeKey, kek };

        var setRoles = new Command("set", "Replace a user's roles.") { user, roles };
        setRoles.SetAction(Run(async (result, client, token) =>
        {
            await client.SetRolesAsync(result.GetValue(user)!, result.GetValue(roles)!, token);
            await output.WriteLineAsync($"roles: {string.Join(",", result.GetValue(roles)!)}");
        }));
        var rolesCommand = new Command("roles", "Manage roles.") { setRoles };

        var algorithm = new Option<string>("--algorithm") { Description = "token_bucket, leaky_bucket, fixed_window or sliding_window.", DefaultValueFactory = _ => "token_bucket" };
        algorithm.AcceptOnlyFromAmong([.. Algorithms.Keys]);
        var window = new Option<int>("--window-seconds") { Description = "The window of --requests and --tokens.", DefaultValueFactory = _ => 60 };
        var requests = new Option<long?>("--requests") { Description = "Requests per window." };
        var tokens = new Option<long?>("--tokens") { Description = "Model tokens per window." };
        var concurrency = new Option<int?>("--concurrency") { Description = "Concurrent generations." };
        var daily = new Option<long?>("--daily-tokens") { Description = "Tokens per UTC day." };
        var monthly = new Option<long?>("--monthly-tokens") { Description = "Tokens per UTC month." };
        var setLimits = new Command("set", "Override some of a user's limits.") { user, algorithm, window, requests, tokens, concurrency, daily, monthly };
        setLimits.SetAction(Run(async (result, client, token) =>
        {
            var chosen = Algorithms[result.GetValue(algorithm)!];
            var span = TimeSpan.FromSeconds(result.GetValue(window));
            var overrides = new UserLimits(
                result.GetValue(requests) is { } r ? new LimitPolicy(chosen, r, span) : null,
                result.GetValue(tokens) is { } t ? new LimitPolicy(chosen, t, span) : null,
                result.GetValue(concurrency), result.GetValue(daily), result.GetValue(monthly));
            var effective = await client.SetLimitsAsync(result.GetValue(user)!, overrides, token);
            await output.WriteLineAsync($"requests: {effective.Requests?.ToString() ?? "unlimited"}");
            await output.WriteLineAsync($"tokens: {effective.Tokens?.ToString() ?? "unlimited"}");
            await output.WriteLineAsync($"concurrency: {effective.Concurrency?.ToString() ?? "unlimited"}, daily tokens: {effective.DailyTokens?.ToString() ?? "unlimited"}, monthly tokens: {effective.MonthlyTokens?.ToString() ?? "unlimited"}");
        }));
        var limits = new Command("limits", "Manage limits.") { setLimits };

        var suspend = new Command("suspend", "Suspend a user and cancel their running generations.") { user };
        suspend.SetAction(Run(async (result, client, token) =>
        {
            await client.SuspendAsync(result.GetValue(user)!, token);
            await output.WriteLineAsync("suspended");
        }));
        var resume = new Command("resume", "Lift a user's suspension.") { user };
        resume.SetAction(Run(async (result, client, token) =>
        {
            await client.ResumeAsync(result.GetValue(user)!, token);
            await output.WriteLineAsync("resumed");
        }));
        var revokeTokens = new Command("revoke-tokens", "Invalidate every token issued to a user so far.") { user };
        revokeTokens.SetAction(Run(async (result, client, token) =>
        {
            await client.RevokeTokensAsync(result.GetValue(user)!, token);
            await output.WriteLineAsync("tokens revoked");
        }));

        var status = new Command("status", "Show the worker silos with their batching queue depth and active sequences.");
        status.SetAction(Run(async (_, client, token) =>
        {
            var load = await client.GetClusterLoadAsync(token);
            await output.WriteLineAsync($"{load.Count} worker silo(s)");
            foreach (var worker in load.OrderBy(w => w.Silo.ToString(), StringComparer.Ordinal))
            {
                await output.WriteLineAsync($"{worker.Silo}  role: worker  queue: {worker.QueueDepth}  active: {worker.ActiveSequences}");
            }
        }));

        return new RootCommand("Operate a Bastion cluster through the client library.")
        {
            users, keys, rolesCommand, limits, suspend, resume, revokeTokens, status,
        };

        Func<ParseResult, CancellationToken, Task<int>> Run(Func<ParseResult, BastionClient, CancellationToken, Task> action) =>
            Guarded(async (result, token) => await action(result, await connect(), token));

        Func<ParseResult, CancellationToken, Task<int>> Guarded(Func<ParseResult, CancellationToken, Task> action) => async (result, token) =>
        {
            try
            {
                await action(result, token);
                return 0;
            }
            catch (CommandFailedException failed)
            {
                await errors.WriteLineAsync($"failed: {failed.Message}");
                return 1;
            }
            catch (Exception vault) when (vault is RequestFailedException || (vault is AggregateException all && all.InnerExceptions.All(e => e is RequestFailedException)))
            {
                // The SDK's own message can echo request details: status and error code only. Its retries end in an AggregateException.
                var failure = vault as RequestFailedException ?? (RequestFailedException)((AggregateException)vault).InnerExceptions[^1];
                await errors.WriteLineAsync(failure.Status switch
                {
                    0 => "failed: Key Vault could not be reached (check --vault-uri and the network).",
                    401 or 403 => $"failed: Key Vault refused the request ({failure.Status}); rotating needs the Key Vault Secrets Officer role on the vault.",
                    _ => $"failed: Key Vault answered {failure.Status} ({failure.ErrorCode ?? "no error code"}).",
                });
                return 1;
            }
            catch (AuthenticationFailedException)
            {
                await errors.WriteLineAsync("failed: the Azure credential could not get a token for Key Vault (az login, or the AZURE_* environment variables).");
                return 1;
            }
            catch (ServiceRefusedException refused)
            {
                await errors.WriteLineAsync($"refused ({refused.Reason}): {refused.Message}");
                return 2;
            }
            catch (OptionsValidationException invalid)
            {
                await errors.WriteLineAsync(string.Join(Environment.NewLine, invalid.Failures));
                return 3;
            }
        };
    }
}
