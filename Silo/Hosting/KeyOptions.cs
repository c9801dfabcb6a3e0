using Bastion.Security;

namespace Bastion.Hosting;

/// <summary>Where keys come from: the development keyring file or Azure Key Vault.</summary>
public sealed class KeyOptions
{
    public const string SectionName = "Bastion:Keys";

    /// <summary>
    /// <c>Development</c> (a local keyring file) or <c>KeyVault</c>. Unset, it is <c>Development</c> in the
    /// Development environment and <c>KeyVault</c> everywhere else, so a production silo never falls back
    /// to a file on disk unless an operator asks for it by name.
    /// </summary>
    public KeyProviderKind? Provider { get; set; }

    /// <summary>The development keyring file; defaults to <c>keyring.json</c> in the data directory.</summary>
    public string? KeyringPath { get; set; }

    /// <summary>The vault and secret names, used when <see cref="Provider"/> is <c>KeyVault</c>.</summary>
    public KeyVaultOptions KeyVault { get; set; } = new();

    /// <summary>The provider in effect in the given environment.</summary>
    public KeyProviderKind EffectiveProvider(bool isDevelopment) => Provider ?? (isDevelopment ? KeyProviderKind.Development : KeyProviderKind.KeyVault);
}

public enum KeyProviderKind
{
    Development,
    KeyVault,
}
