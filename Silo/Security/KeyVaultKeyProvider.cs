using System.Globalization;
using System.Security.Cryptography;
using Azure;
using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using Bastion.Hosting;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// Keys from Azure Key Vault secrets. Every enabled version of each secret is read at start and then
/// every <c>RefreshInterval</c>, and served from memory. A version's stable number is its required
/// <c>bastion-version</c> tag (it is stored beside what the version protects, so every silo must agree
/// on it). A new version becomes the one used for new writes and signatures only two refresh intervals
/// after Key Vault created it, by which time every running silo has read it; older versions keep
/// validating and decrypting for as long as they stay enabled. When the vault cannot be read the cached
/// keys keep serving for <c>MaxStaleness</c>; after that every use throws <see cref="KeysUnavailableException"/>.
/// </summary>
public sealed partial class KeyVaultKeyProvider : IKeyProvider, IHostedService, IDisposable
{
    /// <summary>The tag that carries a version's stable number.</summary>
    public const string VersionTag = "bastion-version";

    private readonly SecretClient _client;
    private readonly KeyVaultOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<KeyVaultKeyProvider> _logger;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly PeriodicRefresh _refresh;
    private volatile Snapshot? _snapshot;

    public KeyVaultKeyProvider(SecretClient client, KeyVaultOptions options, TimeProvider time, ILogger<KeyVaultKeyProvider> logger)
    {
        _client = client;
        _options = options;
        _time = time;
        _logger = logger;
        // The cached keys keep serving when a refresh fails, until MaxStaleness.
        _refresh = new PeriodicRefresh(options.RefreshInterval, time, RefreshAsync, exception => LogRefreshFailed(Describe(exception), _snapshot?.RefreshedAt, options.MaxStaleness));
    }

    /// <summary>When the vault was last read in full, or null before the first read.</summary>
    public DateTimeOffset? LastRefreshedAt => _snapshot?.RefreshedAt;

    /// <summary>Time since the last successful refresh, on the provider's own clock; null before the first.</summary>
    public TimeSpan? SinceLastRefresh => _snapshot is { } snapshot ? _time.GetUtcNow() - snapshot.RefreshedAt : null;

    /// <summary>Whether the cached keys may still be used (read once, and not longer ago than <c>MaxStaleness</c>).</summary>
    public bool IsAvailable => _snapshot is { } snapshot && !IsStale(snapshot);

    public ReadOnlySpan<byte> PseudonymKey => Fresh().PseudonymKey;

    public VersionedSecret CurrentApiKeyHashingKey => Current(Fresh().HashingKeys).Secret;

    public IReadOnlyList<VersionedSecret> ApiKeyHashingKeys => [.. Fresh().HashingKeys.Select(entry => entry.Secret)];

    public VersionedSecret CurrentApiKeyIdKey => Current(Fresh().KeyIdKeys).Secret;

    public IReadOnlyList<VersionedSecret> ApiKeyIdKeys => [.. Fresh().KeyIdKeys.Select(entry => entry.Secret)];

    // Not subject to MaxStaleness: failing here would stop every silo-to-silo call, membership probes included,
    // during a vault outage, and a cached version stays exactly as good as it was when read.
    public VersionedSecret CurrentClusterAssertionKey => Current(Read().AssertionKeys).Secret;

    public VersionedSecret? FindClusterAssertionKey(int version) => Read().AssertionKeys.FirstOrDefault(entry => entry.Version == version)?.Secret;

    // Like the cluster-assertion key: a seal written with a cached version is as good as one written with a fresh read.
    public VersionedSecret CurrentAuditSealKey => Current(Read().SealKeys).Secret;

    public VersionedSecret? FindAuditSealKey(int version) => Read().SealKeys.FirstOrDefault(entry => entry.Version == version)?.Secret;

    public SigningCredentials SigningCredentials
    {
        get
        {
            var key = Current(Fresh().SigningKeys).Key;
            return new SigningCredentials(key, SigningKeyAlgorithms.For(key));
        }
    }

    public IReadOnlyList<SecurityKey> ValidationKeys => [.. Fresh().SigningKeys.Select(entry => entry.Key)];

    public VersionedSecret CurrentKek => Current(Fresh().Keks).Secret;

    public VersionedSecret? FindKek(int version) => Fresh().Keks.FirstOrDefault(entry => entry.Version == version)?.Secret;

    public IReadOnlyList<int> KekVersions => [.. Fresh().Keks.Select(entry => entry.Version).Order()];

    /// <summary>
    /// The silo only reads the vault (Key Vault Secrets User); an operator retires a version by disabling it there,
    /// after <see cref="Storage.KeyRotation"/> has confirmed that nothing uses it.
    /// </summary>
    public void RetireKek(int version) =>
        throw new NotSupportedException($"KEK version {version} is wrapped by no data key; retire it by disabling that version of the secret in Key Vault.");

    /// <summary>Reads the vault once (the silo does not start without its keys), then refreshes in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RefreshAsync(cancellationToken);
        }
        catch (Exception exception) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StartupException(
                $"The keys could not be read from Key Vault {_options.VaultUri} ({KeyVaultOptions.SectionName}:VaultUri): {Describe(exception)}. " +
                "The silo's identity needs the Key Vault Secrets User role on the vault; see docs/key-vault.md.", exception);
        }

        _refresh.Start();
    }

    public Task StopAsync(CancellationToken cancellationToken) => _refresh.StopAsync(cancellationToken);

    /// <summary>
    /// Reads every enabled version of each secret (only versions not read before are fetched) and
    /// replaces the cache as a whole; on any failure the cache stays as it was.
    /// </summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _refreshing.WaitAsync(cancellationToken);
        try
        {
            var previous = _snapshot;
            var pseudonym = await ReadAsync(_options.PseudonymKeySecret, previous?.PseudonymVersions, ParseSymmetric, cancellationToken);
            var hashing = await ReadAsync(_options.ApiKeyHashingKeySecret, previous?.HashingKeys, ParseSymmetric, cancellationToken);
            var keyIdKeys = await ReadAsync(_options.ApiKeyIdKeySecret, previous?.KeyIdKeys, ParseSymmetric, cancellationToken);
            var assertionKeys = await ReadAsync(_options.ClusterAssertionKeySecret, previous?.AssertionKeys, ParseSymmetric, cancellationToken);
            var sealKeys = await ReadAsync(_options.AuditSealKeySecret, previous?.SealKeys, ParseSymmetric, cancellationToken);
            var signing = await ReadAsync(_options.SigningKeySecret, previous?.SigningKeys, ParseSigningKey, cancellationToken);
            var keks = await ReadAsync(_options.KeyEncryptionKeySecret, previous?.Keks, ParseSymmetric, cancellationToken);

            // Pseudonyms are stored (grain keys, audit rows); a second key would split every user in two.
            byte[] pseudonymKey;
            if (previous is not null)
            {
                pseudonymKey = previous.PseudonymKey;
                if (pseudonym.Count != 1 || pseudonym[0].VaultVersion != previous.PseudonymVersions[0].VaultVersion)
                {
                    LogPseudonymKeyChanged(_options.PseudonymKeySecret);
                }
            }
            else if (pseudonym.Count == 1)
            {
                pseudonymKey = pseudonym[0].Secret.Key;
            }
            else
            {
                throw new KeyVaultContentException($"secret '{_options.PseudonymKeySecret}' must have exactly one enabled version (it has {pseudonym.Count}); the pseudonym key does not rotate");
            }

            _snapshot = new Snapshot(pseudonymKey, previous?.PseudonymVersions ?? pseudonym, hashing, keyIdKeys, assertionKeys, sealKeys, signing, keks, _time.GetUtcNow());
        }
        finally
        {
            _refreshing.Release();
        }
    }

    private async Task<List<T>> ReadAsync<T>(
        string secretName, IReadOnlyList<T>? cached, Func<string, string, int, KeyVaultSecret, T> parse, CancellationToken cancellationToken)
        where T : VaultEntry
    {
        var entries = new List<T>();
        var numbers = new Dictionary<int, string>();
        await foreach (var properties in _client.GetPropertiesOfSecretVersionsAsync(secretName, cancellationToken))
        {
            // Disabled versions count too: a number once given to a version is never given to another.
            var number = properties.Tags.TryGetValue(VersionTag, out var tag)
                && int.TryParse(tag, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed > 0 ? parsed : (int?)null;
            if (properties.Enabled != true)
            {
                if (number is { } retired)
                {
                    numbers.TryAdd(retired, properties.Version);
                }

                continue;
            }

            if (number is not { } version)
            {
                throw new KeyVaultContentException($"an enabled version of secret '{secretName}' has no '{VersionTag}' tag holding a positive integer");
            }

            if (!numbers.TryAdd(version, properties.Version))
            {
                throw new KeyVaultContentException($"two versions of secret '{secretName}' are tagged {VersionTag}={version}");
            }

            var entry = cached?.FirstOrDefault(known => known.VaultVersion == properties.Version);
            if (entry is null)
            {
                KeyVaultSecret secret = await _client.GetSecretAsync(secretName, properties.Version, cancellationToken);
                entry = parse(secretName, properties.Version, version, secret);
            }

            entries.Add(entry);
        }

        if (entries.Count == 0)
        {
            throw new KeyVaultContentException($"secret '{secretName}' has no enabled version");
        }

        return entries;
    }

    private SymmetricEntry ParseSymmetric(string secretName, string vaultVersion, int version, KeyVaultSecret secret)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(secret.Value.Trim());
        }
        catch (FormatException)
        {
            throw new KeyVaultContentException($"version {version} of secret '{secretName}' is not base64");
        }

        if (key.Length != 32)
        {
            throw new KeyVaultContentException($"version {version} of secret '{secretName}' must hold 32 bytes (it holds {key.Length})");
        }

        return new SymmetricEntry(vaultVersion, version, EligibleAt(secret.Properties), new VersionedSecret(version, key));
    }

    private SigningEntry ParseSigningKey(string secretName, string vaultVersion, int version, KeyVaultSecret secret)
    {
        // The kid is public (JWKS, token headers) and must be the same on every silo and after restarts.
        var keyId = $"{secretName}-{version.ToString(CultureInfo.InvariantCulture)}";
        SecurityKey key;
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(secret.Value);
            key = new ECDsaSecurityKey(ecdsa) { KeyId = keyId };
            if (ecdsa.ExportParameters(false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
            {
                throw new KeyVaultContentException($"version {version} of secret '{secretName}' is an EC key on a curve other than P-256");
            }
        }
        catch (Exception exception) when (exception is CryptographicException or ArgumentException)
        {
            ecdsa.Dispose();
            var rsa = RSA.Create();
            try
            {
                rsa.ImportFromPem(secret.Value);
            }
            catch (Exception rsaException) when (rsaException is CryptographicException or ArgumentException)
            {
                rsa.Dispose();
                throw new KeyVaultContentException($"version {version} of secret '{secretName}' is not a PEM private key (PKCS#8, EC P-256 or RSA)");
            }

            key = new RsaSecurityKey(rsa) { KeyId = keyId };
        }

        if (SigningKeyAlgorithms.For(key) is null)
        {
            throw new KeyVaultContentException($"version {version} of secret '{secretName}' is too weak to sign (RSA needs at least 2048 bits)");
        }

        return new SigningEntry(vaultVersion, version, EligibleAt(secret.Properties), key);
    }

    // Key Vault's own timestamps, not this silo's first sight, so every silo (and a restarted one) agrees
    // on when a version becomes current. A version enabled later counts from its update.
    private DateTimeOffset EligibleAt(SecretProperties properties) =>
        (properties.UpdatedOn ?? properties.CreatedOn ?? DateTimeOffset.MinValue) + (2 * _options.RefreshInterval);

    // The highest version whose rollout delay has passed; in a new vault where none has, the lowest.
    private T Current<T>(IReadOnlyList<T> entries)
        where T : VaultEntry
    {
        var now = _time.GetUtcNow();
        return entries.Where(entry => entry.EligibleAt <= now).MaxBy(entry => entry.Version) ?? entries.MinBy(entry => entry.Version)!;
    }

    private Snapshot Fresh()
    {
        var snapshot = Read();
        return IsStale(snapshot) ? throw new KeysUnavailableException() : snapshot;
    }

    private Snapshot Read() => _snapshot ?? throw new KeysUnavailableException("The keys are unavailable: the key vault has not been read yet.");

    private bool IsStale(Snapshot snapshot) => _time.GetUtcNow() - snapshot.RefreshedAt > _options.MaxStaleness;

    // Status codes and error codes only: an exception's message can carry response headers and bodies.
    internal static string Describe(Exception exception) => exception switch
    {
        RequestFailedException { Status: 0 } => "the vault could not be reached",
        RequestFailedException failed => $"the vault answered HTTP {failed.Status.ToString(CultureInfo.InvariantCulture)} {failed.ErrorCode}",
        AuthenticationFailedException => "the Azure credential could not get a token",
        OperationCanceledException => "the vault did not answer in time",
        KeyVaultContentException => exception.Message,
        _ => "an unexpected " + exception.GetType().Name,
    };

    public void Dispose()
    {
        _refresh.Dispose();
        _refreshing.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refreshing keys from Key Vault failed ({Reason}); cached keys from {RefreshedAt} serve until they are {MaxStaleness} old")]
    private partial void LogRefreshFailed(string reason, DateTimeOffset? refreshedAt, TimeSpan maxStaleness);

    [LoggerMessage(Level = LogLevel.Error, Message = "The enabled versions of Key Vault secret '{SecretName}' changed; the pseudonym key does not rotate, so the one read at start stays in use until restart")]
    private partial void LogPseudonymKeyChanged(string secretName);

    private abstract record VaultEntry(string VaultVersion, int Version, DateTimeOffset EligibleAt);

    private sealed record SymmetricEntry(string VaultVersion, int Version, DateTimeOffset EligibleAt, VersionedSecret Secret)
        : VaultEntry(VaultVersion, Version, EligibleAt);

    private sealed record SigningEntry(string VaultVersion, int Version, DateTimeOffset EligibleAt, SecurityKey Key)
        : VaultEntry(VaultVersion, Version, EligibleAt);

    private sealed record Snapshot(
        byte[] PseudonymKey,
        IReadOnlyList<SymmetricEntry> PseudonymVersions,
        IReadOnlyList<SymmetricEntry> HashingKeys,
        IReadOnlyList<SymmetricEntry> KeyIdKeys,
        IReadOnlyList<SymmetricEntry> AssertionKeys,
        IReadOnlyList<SymmetricEntry> SealKeys,
        IReadOnlyList<SigningEntry> SigningKeys,
        IReadOnlyList<SymmetricEntry> Keks,
        DateTimeOffset RefreshedAt);

    /// <summary>The vault answered, but a secret in it is not usable; the message names the secret, never its value.</summary>
    private sealed class KeyVaultContentException(string message) : Exception(message);
}
