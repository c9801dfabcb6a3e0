using System.Globalization;
using System.Security.Cryptography;
using Azure;
using Azure.Security.KeyVault.Secrets;

namespace Bastion.Cli;

/// <summary>
/// Key Vault rotation from the operator's machine (the operator holds Key Vault Secrets Officer; silos only read). Every
/// version carries the tag <c>bastion-version</c> with its number (docs/key-vault.md); numbers are never reused, so a new
/// version gets the highest number of any version, enabled or disabled, plus one. Key material is generated here, sent
/// to the vault, and never printed.
/// </summary>
internal sealed class VaultKeys(SecretClient vault)
{
    /// <summary>The tag that numbers a version.</summary>
    public const string VersionTag = "bastion-version";

    /// <summary>The KEK secret's default name (<c>Bastion:Keys:KeyVault:KeyEncryptionKeySecret</c>).</summary>
    public const string KekSecret = "bastion-kek";

    /// <summary>The signing key secret's default name (<c>Bastion:Keys:KeyVault:SigningKeySecret</c>).</summary>
    public const string SigningSecret = "bastion-signing-key";

    /// <summary>Every version of <paramref name="secret"/> with its number (null where the tag is missing or not a positive integer).</summary>
    public async Task<IReadOnlyList<(SecretProperties Properties, int? Number)>> VersionsAsync(string secret, CancellationToken cancellationToken)
    {
        var versions = new List<(SecretProperties, int?)>();
        try
        {
            await foreach (var properties in vault.GetPropertiesOfSecretVersionsAsync(secret, cancellationToken))
            {
                versions.Add((properties, NumberOf(properties)));
            }
        }
        catch (RequestFailedException missing) when (missing.Status == 404)
        {
            // No such secret: no versions.
        }

        return versions;
    }

    /// <summary>Adds a version with the next number and a fresh value; returns that number.</summary>
    public async Task<int> AddVersionAsync(string secret, bool signingKey, CancellationToken cancellationToken)
    {
        var versions = await VersionsAsync(secret, cancellationToken);
        if (versions.Count == 0)
        {
            throw new CommandFailedException(
                $"the vault has no secret '{secret}': check --secret (the first version is created when the cluster is set up; see docs/key-vault.md).");
        }

        var number = versions.Max(v => v.Number ?? 0) + 1;
        var value = signingKey ? NewSigningKey() : NewSymmetricKey();
        var secretVersion = new KeyVaultSecret(secret, value);
        secretVersion.Properties.Tags[VersionTag] = number.ToString(CultureInfo.InvariantCulture);
        if (signingKey)
        {
            secretVersion.Properties.ContentType = "application/x-pem-file";
        }

        await vault.SetSecretAsync(secretVersion, cancellationToken);
        return number;
    }

    /// <summary>Disables every enabled version of <paramref name="secret"/> numbered <paramref name="number"/>.</summary>
    public async Task<DisableResult> DisableAsync(string secret, int number, CancellationToken cancellationToken)
    {
        var matching = (await VersionsAsync(secret, cancellationToken)).Where(v => v.Number == number).Select(v => v.Properties).ToList();
        if (matching.Count == 0)
        {
            return DisableResult.NotFound;
        }

        var enabled = matching.Where(properties => properties.Enabled != false).ToList();
        foreach (var properties in enabled)
        {
            properties.Enabled = false;
            await vault.UpdateSecretPropertiesAsync(properties, cancellationToken);
        }

        return enabled.Count == 0 ? DisableResult.AlreadyDisabled : DisableResult.Disabled;
    }

    /// <summary>Whether the vault holds an enabled version numbered <paramref name="number"/>.</summary>
    public async Task<bool> IsEnabledAsync(string secret, int number, CancellationToken cancellationToken) =>
        (await VersionsAsync(secret, cancellationToken)).Any(v => v.Number == number && v.Properties.Enabled != false);

    private static int? NumberOf(SecretProperties properties) =>
        properties.Tags.TryGetValue(VersionTag, out var tag)
        && int.TryParse(tag, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number > 0 ? number : null;

    // AES-256: base64 of 32 random bytes, the form the silos' provider parses.
    private static string NewSymmetricKey()
    {
        var bytes = RandomNumberGenerator.GetBytes(32);
        try
        {
            return Convert.ToBase64String(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    // ES256: a PKCS#8 EC P-256 private key in PEM.
    private static string NewSigningKey()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return key.ExportPkcs8PrivateKeyPem();
    }
}

/// <summary>What disabling a numbered version did.</summary>
internal enum DisableResult
{
    Disabled,
    AlreadyDisabled,
    NotFound,
}

/// <summary>A command that cannot go on (a vault step, a failed re-wrap): exit code 1. The message is for the operator and names no key material.</summary>
internal sealed class CommandFailedException(string message) : Exception(message);
