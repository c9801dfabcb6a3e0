namespace Bastion.Hosting;

/// <summary>Where keys come from. Only the development keyring exists so far.</summary>
public sealed class KeyOptions
{
    public const string SectionName = "Bastion:Keys";

    /// <summary>The development keyring file; defaults to <c>keyring.json</c> in the data directory.</summary>
    public string? KeyringPath { get; set; }
}
