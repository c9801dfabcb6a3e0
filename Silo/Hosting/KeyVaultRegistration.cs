using Azure.Core;
using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using Bastion.Security;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bastion.Hosting;

internal static class KeyVaultRegistration
{
    /// <summary>
    /// Keys from Azure Key Vault: validated options, a <see cref="SecretClient"/> and the provider (unless
    /// registered already, as tests do for a local stand-in vault and a fake clock), the provider as a hosted service registered before
    /// Orleans so that the silo never joins the cluster without its keys, and a <c>keys</c> readiness check.
    /// </summary>
    public static IServiceCollection AddKeyVaultKeys(this IServiceCollection services, KeyVaultOptions options, bool isDevelopment)
    {
        if (options.Problems(isDevelopment).ToList() is { Count: > 0 } problems)
        {
            throw new OptionsValidationException(KeyVaultOptions.SectionName, typeof(KeyVaultOptions), problems);
        }

        services.TryAddSingleton(_ => CreateSecretClient(options));
        services.TryAddSingleton(sp => new KeyVaultKeyProvider(
            sp.GetRequiredService<SecretClient>(), options, sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetRequiredService<ILogger<KeyVaultKeyProvider>>()));
        services.AddSingleton<IKeyProvider>(sp => sp.GetRequiredService<KeyVaultKeyProvider>());
        services.AddHostedService(sp => sp.GetRequiredService<KeyVaultKeyProvider>());
        services.AddHealthChecks().AddCheck<KeyVaultHealthCheck>("keys", tags: ["ready"]);
        return services;
    }

    private static SecretClient CreateSecretClient(KeyVaultOptions options)
    {
        var clientOptions = new SecretClientOptions { DisableChallengeResourceVerification = options.DisableChallengeResourceVerification };
        // An unreachable vault at start should fail start-up within a minute or two, not hang it.
        clientOptions.Retry.MaxRetries = 3;
        clientOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(20);
        return new SecretClient(options.VaultUri, Credential(options), clientOptions);
    }

    private static TokenCredential Credential(KeyVaultOptions options) => options.Credential switch
    {
        KeyVaultCredentialKind.ManagedIdentity => new ManagedIdentityCredential(options.ManagedIdentityClientId is { } clientId
            ? ManagedIdentityId.FromUserAssignedClientId(clientId)
            : ManagedIdentityId.SystemAssigned),
        KeyVaultCredentialKind.WorkloadIdentity => new WorkloadIdentityCredential(),
        KeyVaultCredentialKind.Environment => new EnvironmentCredential(),
        _ => new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = options.ManagedIdentityClientId }),
    };
}

/// <summary>Ready only while the Key Vault keys have been read, and not longer ago than <c>MaxStaleness</c>.</summary>
internal sealed class KeyVaultHealthCheck(KeyVaultKeyProvider keys) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(keys.IsAvailable
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy(keys.LastRefreshedAt is null ? "keys not loaded" : "keys stale: the key vault has not been read within MaxStaleness"));
}
