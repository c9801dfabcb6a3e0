using System.Text.RegularExpressions;

namespace Bastion.Security;

/// <summary>
/// <c>Bastion:Keys:KeyVault</c>: the vault, the six secrets Bastion reads from it, how often they are
/// re-read, and which Azure identity reads them. Every silo of a cluster needs the same values.
/// </summary>
public sealed partial class KeyVaultOptions
{
    public const string SectionName = "Bastion:Keys:KeyVault";

    /// <summary>The vault, e.g. <c>https://bastion-prod.vault.azure.net/</c>.</summary>
    public Uri? VaultUri { get; set; }

    /// <summary>The HMAC key that turns user ids into pseudonyms (base64, 32 bytes; exactly one enabled version).</summary>
    public string PseudonymKeySecret { get; set; } = "bastion-pseudonym-key";

    /// <summary>The API-key hashing keys (base64, 32 bytes each).</summary>
    public string ApiKeyHashingKeySecret { get; set; } = "bastion-api-key-hashing-key";

    /// <summary>The keys that tag API-key ids, so the edge refuses invented ids without a lookup (base64, 32 bytes each).</summary>
    public string ApiKeyIdKeySecret { get; set; } = "bastion-api-key-id-key";

    /// <summary>The keys silos MAC their calls to each other with (base64, 32 bytes each; only silos may read it).</summary>
    public string ClusterAssertionKeySecret { get; set; } = "bastion-cluster-assertion-key";

    /// <summary>The keys the audit trail's seals are MACed with (base64, 32 bytes each; only silos and auditors may read it).</summary>
    public string AuditSealKeySecret { get; set; } = "bastion-audit-seal-key";

    /// <summary>The access-token signing keys (PEM PKCS#8: EC P-256 for ES256, or RSA of at least 2048 bits for RS256).</summary>
    public string SigningKeySecret { get; set; } = "bastion-signing-key";

    /// <summary>The key-encryption keys that wrap data keys (base64, 32 bytes each).</summary>
    public string KeyEncryptionKeySecret { get; set; } = "bastion-kek";

    /// <summary>How often every secret is re-read. A new version is used for new writes two intervals after it was created.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long cached keys keep serving while the vault cannot be read; after that, operations needing keys fail (503).</summary>
    public TimeSpan MaxStaleness { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Which Azure identity reads the vault.</summary>
    public KeyVaultCredentialKind Credential { get; set; } = KeyVaultCredentialKind.Default;

    /// <summary>The client id of a user-assigned managed identity (with <c>Default</c> or <c>ManagedIdentity</c>); unset means system-assigned.</summary>
    public string? ManagedIdentityClientId { get; set; }

    /// <summary>
    /// Skips the check that the vault's authentication challenge names a Key Vault resource. Only a
    /// local stand-in vault needs this; it is refused outside Development.
    /// </summary>
    public bool DisableChallengeResourceVerification { get; set; }

    /// <summary>The problems with these options, each naming its setting; empty when they are usable.</summary>
    public IEnumerable<string> Problems(bool isDevelopment)
    {
        if (VaultUri is null || !VaultUri.IsAbsoluteUri || VaultUri.Scheme != Uri.UriSchemeHttps)
        {
            yield return $"{SectionName}:VaultUri must be the vault's https URI (e.g. https://my-vault.vault.azure.net/).";
        }

        var names = new[]
        {
            (nameof(PseudonymKeySecret), PseudonymKeySecret),
            (nameof(ApiKeyHashingKeySecret), ApiKeyHashingKeySecret),
            (nameof(ApiKeyIdKeySecret), ApiKeyIdKeySecret),
            (nameof(ClusterAssertionKeySecret), ClusterAssertionKeySecret),
            (nameof(AuditSealKeySecret), AuditSealKeySecret),
            (nameof(SigningKeySecret), SigningKeySecret),
            (nameof(KeyEncryptionKeySecret), KeyEncryptionKeySecret),
        };
        foreach (var (setting, name) in names)
        {
            if (!IsSecretName(name))
            {
                yield return $"{SectionName}:{setting} must be a Key Vault secret name (1-127 letters, digits and '-').";
            }
        }

        if (names.Select(entry => entry.Item2).Distinct(StringComparer.OrdinalIgnoreCase).Count() != names.Length)
        {
            yield return $"{SectionName}: the secret names must differ (each key has its own secret).";
        }

        if (RefreshInterval < TimeSpan.FromSeconds(1) || RefreshInterval > TimeSpan.FromDays(1))
        {
            yield return $"{SectionName}:RefreshInterval must be between 00:00:01 and 1.00:00:00.";
        }

        if (MaxStaleness < 2 * RefreshInterval)
        {
            yield return $"{SectionName}:MaxStaleness must be at least twice RefreshInterval, or one failed refresh would stop the silo.";
        }

        if (ManagedIdentityClientId is not null && Credential is not (KeyVaultCredentialKind.Default or KeyVaultCredentialKind.ManagedIdentity))
        {
            yield return $"{SectionName}:ManagedIdentityClientId applies only with Credential Default or ManagedIdentity.";
        }

        if (DisableChallengeResourceVerification && !isDevelopment)
        {
            yield return $"{SectionName}:DisableChallengeResourceVerification is refused outside Development: it lets a server that is not Key Vault receive the silo's access token.";
        }
    }

    /// <summary>Whether <paramref name="name"/> can name a Key Vault secret (1-127 letters, digits and '-').</summary>
    internal static bool IsSecretName(string? name) => name is not null && SecretName().IsMatch(name);

    [GeneratedRegex("^[0-9a-zA-Z-]{1,127}$")]
    private static partial Regex SecretName();
}

/// <summary>The Azure.Identity credential that reads the vault.</summary>
public enum KeyVaultCredentialKind
{
    /// <summary><c>DefaultAzureCredential</c>: environment, workload identity, managed identity, then developer tools.</summary>
    Default,

    /// <summary><c>ManagedIdentityCredential</c>: the VM's or App Service's identity (system- or user-assigned).</summary>
    ManagedIdentity,

    /// <summary><c>WorkloadIdentityCredential</c>: AKS workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE).</summary>
    WorkloadIdentity,

    /// <summary><c>EnvironmentCredential</c>: a service principal from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH).</summary>
    Environment,
}
