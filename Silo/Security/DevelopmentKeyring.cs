using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// A generated keyring file for development: one pseudonym key; versioned API-key hashing keys, API-key id
/// tagging keys and cluster-assertion keys (one purpose each; the highest version is current, read at load);
/// one or more ES256 signing keys (the newest signs, every one validates); and one or more key-encryption
/// keys (the highest version wraps new data keys, every one not retired unwraps; the file is re-read when it changes, see Keks). The file is created with mode 0600, and a file that group or others can read
/// is refused, because anyone who can read it can forge tokens and link pseudonyms to users.
/// </summary>
public sealed class DevelopmentKeyring : IKeyProvider, IDisposable
{
    private const long RecheckInterval = 1000; // milliseconds

    // Bumped by every keyring write in this process, so that a rotation made here is seen at once.
    private static long s_changes;

    private readonly byte[] _pseudonymKey;
    private readonly List<VersionedSecret> _clusterAssertionKeys;
    private readonly List<VersionedSecret> _auditSealKeys;
    private readonly List<ECDsa> _signingKeys = [];
    private readonly string _path;
    private volatile KekSnapshot _keks;

    private DevelopmentKeyring(KeyringFile file, string path)
    {
        _path = path;
        _pseudonymKey = Convert.FromBase64String(file.PseudonymKey);
        ApiKeyHashingKeys = Versions(HashingKeysOf(file), "api_key_hashing_keys", path);
        ApiKeyIdKeys = Versions(file.ApiKeyIdKeys, "api_key_id_keys", path);
        _clusterAssertionKeys = Versions(file.ClusterAssertionKeys, "cluster_assertion_keys", path);
        _auditSealKeys = Versions(file.AuditSealKeys, "audit_seal_keys", path);
        var entries = SigningKeysOf(file);
        if (entries.Count == 0 || entries.DistinctBy(entry => entry.KeyId, StringComparer.Ordinal).Count() != entries.Count)
        {
            throw new InvalidOperationException(
                $"The development keyring {path} needs at least one signing key and no key id twice (Bastion:Keys:KeyringPath).");
        }

        // The newest key signs; older ones stay until removed from the file, so tokens they signed still validate.
        var validationKeys = new List<SecurityKey>();
        foreach (var entry in entries.OrderByDescending(entry => entry.CreatedAt))
        {
            var ecdsa = ECDsa.Create();
            _signingKeys.Add(ecdsa);
            ecdsa.ImportPkcs8PrivateKey(Convert.FromBase64String(entry.Key), out _);
            validationKeys.Add(new ECDsaSecurityKey(ecdsa) { KeyId = entry.KeyId });
        }

        SigningCredentials = new SigningCredentials(validationKeys[0], SecurityAlgorithms.EcdsaSha256);
        ValidationKeys = validationKeys;

        _keks = new KekSnapshot(Stamp(path), KeksOf(file, path), Environment.TickCount64, Volatile.Read(ref s_changes));
    }

    public ReadOnlySpan<byte> PseudonymKey => _pseudonymKey;

    public IReadOnlyList<VersionedSecret> ApiKeyHashingKeys { get; }

    public VersionedSecret CurrentApiKeyHashingKey => ApiKeyHashingKeys[^1];

    public IReadOnlyList<VersionedSecret> ApiKeyIdKeys { get; }

    public VersionedSecret CurrentApiKeyIdKey => ApiKeyIdKeys[^1];

    public VersionedSecret CurrentClusterAssertionKey => _clusterAssertionKeys[^1];

    public VersionedSecret? FindClusterAssertionKey(int version) => _clusterAssertionKeys.Find(key => key.Version == version);

    public VersionedSecret CurrentAuditSealKey => _auditSealKeys[^1];

    // A version added since this keyring was loaded (by a silo restarted with it) is read from the file, so that its seals verify here too.
    public VersionedSecret? FindAuditSealKey(int version) =>
        _auditSealKeys.Find(key => key.Version == version) ?? Versions(Read(_path).AuditSealKeys, "audit_seal_keys", _path).Find(key => key.Version == version);

    public SigningCredentials SigningCredentials { get; }

    public IReadOnlyList<SecurityKey> ValidationKeys { get; }

    public VersionedSecret CurrentKek => Keks().MaxBy(kek => kek.Version)!;

    public IReadOnlyList<int> KekVersions => [.. Keks().Select(kek => kek.Version).Order()];

    public VersionedSecret? FindKek(int version) =>
        Keks().Find(kek => kek.Version == version) ?? Keks(recheck: true).Find(kek => kek.Version == version);

    public void RetireKek(int version) => RetireKek(_path, version);

    /// <summary>
    /// Adds a KEK to the keyring at <paramref name="path"/> with the next unused version (retired
    /// versions are never reused) and returns that version. Silos in this process see it on their next
    /// use of a KEK, silos in other processes within a second (see <see cref="Keks"/>).
    /// </summary>
    public static int AddKek(string path)
    {
        using var exclusive = LockKeyring(path);
        var file = Read(path);
        var entries = file.KeyEncryptionKeys ?? [];
        var version = entries.Count == 0 ? 1 : entries.Max(entry => entry.Version) + 1;
        Write(path, file with { KeyEncryptionKeys = [.. entries, NewKek(version)] });
        return version;
    }

    /// <summary>
    /// Retires KEK <paramref name="version"/> in the keyring at <paramref name="path"/>: its key bytes
    /// are deleted and its version stays recorded as retired. The caller checks first that no data
    /// key is wrapped with it; the current version is refused here.
    /// </summary>
    /// <exception cref="InvalidOperationException">The version is unknown, already retired, or the current one.</exception>
    public static void RetireKek(string path, int version)
    {
        using var exclusive = LockKeyring(path);
        var file = Read(path);
        var entries = file.KeyEncryptionKeys ?? [];
        var live = entries.Where(entry => entry.Key is not null).ToList();
        if (!live.Exists(entry => entry.Version == version))
        {
            throw new InvalidOperationException($"KEK version {version} is not in the keyring, or already retired.");
        }

        if (live.Max(entry => entry.Version) == version)
        {
            throw new InvalidOperationException($"KEK version {version} is the current version; add a new one (keys rotate-kek) and re-wrap before retiring it.");
        }

        Write(path, file with { KeyEncryptionKeys = [.. entries.Select(entry => entry.Version == version ? entry with { Key = null, Retired = true } : entry)] });
    }

    // The keyring file is replaced atomically (write then rename), so a reader sees the old file or
    // the new one, never half of one. It is looked at again (a stat, reloaded when it changed) when this
    // process has changed a keyring, when a KEK version is asked for that is not loaded (another silo
    // wraps with a newer one), and otherwise at most every RecheckInterval: a stat on every use would
    // sit on the path of every state write, and another process's rotation is taken up within that interval.
    private List<VersionedSecret> Keks(bool recheck = false)
    {
        var current = _keks;
        var now = Environment.TickCount64;
        var changes = Volatile.Read(ref s_changes);
        if (!recheck && changes == current.Changes && now - current.CheckedAt < RecheckInterval)
        {
            return current.Keks;
        }

        var stamp = Stamp(_path);
        if (stamp == current.Stamp)
        {
            _keks = current with { CheckedAt = now, Changes = changes };
            return current.Keks;
        }

        try
        {
            var reloaded = new KekSnapshot(stamp, KeksOf(Read(_path), _path), now, changes);
            _keks = reloaded;
            return reloaded.Keks;
        }
        catch (Exception exception) when (exception is IOException or JsonException or InvalidOperationException or FormatException)
        {
            // A keyring that cannot be read now keeps the keys already loaded; the next use retries.
            return current.Keks;
        }
    }

    private static (DateTime, long) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : default;
    }

    private static List<VersionedSecret> KeksOf(KeyringFile file, string path)
    {
        var entries = file.KeyEncryptionKeys ?? [];
        List<VersionedSecret> keks = [.. entries.Where(entry => entry.Key is not null).Select(entry => new VersionedSecret(entry.Version, Convert.FromBase64String(entry.Key!)))];
        if (keks.Count == 0 || entries.DistinctBy(entry => entry.Version).Count() != entries.Count || keks.Any(kek => kek.Key.Length != 32))
        {
            throw new InvalidOperationException(
                $"The development keyring {path} needs at least one 32-byte key-encryption key and no version twice (Bastion:Keys:KeyringPath).");
        }

        return keks;
    }

    /// <summary>Loads the keyring at <paramref name="path"/>, creating it first when it does not exist.</summary>
    public static DevelopmentKeyring LoadOrCreate(string path) => LoadOrCreate(path, TimeProvider.System);

    /// <inheritdoc cref="LoadOrCreate(string)"/>
    public static DevelopmentKeyring LoadOrCreate(string path, TimeProvider time)
    {
        if (!File.Exists(path))
        {
            Create(path, time);
        }

        if (!OperatingSystem.IsWindows()
            && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            throw new InvalidOperationException(
                $"The development keyring {path} is readable or writable by group or others. Restrict it (chmod 600) or delete it to generate a new one (Bastion:Keys:KeyringPath).");
        }

        var file = Read(path);
        if (MissesAPurpose(file))
        {
            file = Upgrade(path);
        }

        return new DevelopmentKeyring(file, path);
    }

    /// <summary>
    /// Adds a new signing key to the keyring at <paramref name="path"/>: it signs from the next load on,
    /// and the keys before it still validate. A file in the single-key format is rewritten as a list.
    /// </summary>
    public static void AddSigningKey(string path, TimeProvider time)
    {
        var file = Read(path);
        Write(path, file with
        {
            SigningKeyId = null,
            SigningKey = null,
            SigningKeys = [.. SigningKeysOf(file), NewSigningKey(time)],
        });
    }

    /// <summary>
    /// Adds an API-key hashing key to the keyring at <paramref name="path"/> with the next version: it hashes
    /// the keys issued after the next load, and every API key hashed under an older version keeps working.
    /// </summary>
    public static int AddApiKeyHashingKey(string path)
    {
        using var exclusive = LockKeyring(path);
        var file = Read(path);
        var entries = HashingKeysOf(file);
        var version = entries.Max(entry => entry.Version) + 1;
        Write(path, file with { ApiKeyHashingKey = null, ApiKeyHashingKeys = [.. entries, NewKey(version)] });
        return version;
    }

    /// <summary>Adds an audit seal key version max+1 to the keyring at <paramref name="path"/>; silos seal with it after a restart, and every version keeps verifying.</summary>
    public static int AddAuditSealKey(string path)
    {
        using var exclusive = LockKeyring(path);
        var file = Read(path);
        var entries = file.AuditSealKeys ?? [];
        var version = entries.Count == 0 ? 1 : entries.Max(entry => entry.Version) + 1;
        Write(path, file with { AuditSealKeys = [.. entries, NewKey(version)] });
        return version;
    }

    // Keyrings from before encryption at rest lack a KEK, and those from before keys were split by
    // purpose lack the key-id and cluster-assertion keys (and, before the audit trail, the audit seal key); they get them here. Silos sharing an old
    // keyring may upgrade it at once, and a KEK one of them wrapped data keys with must never be
    // overwritten by another, so the upgrade runs under an exclusive lock (flock on Unix) and whoever
    // comes second finds the keys and uses them. API keys issued before the split carry an id tagged
    // under the pseudonym key, which no longer tags anything: re-issue them.
    private static bool MissesAPurpose(KeyringFile file) =>
        file.KeyEncryptionKeys is null or { Count: 0 } || file.ApiKeyIdKeys is null or { Count: 0 } || file.ClusterAssertionKeys is null or { Count: 0 }
        || file.AuditSealKeys is null or { Count: 0 };

    private static KeyringFile Upgrade(string path)
    {
        using var exclusive = LockKeyring(path);
        var file = Read(path);
        if (!MissesAPurpose(file))
        {
            return file;
        }

        Write(path, file with
        {
            KeyEncryptionKeys = file.KeyEncryptionKeys is { Count: > 0 } keks ? keks : [NewKek(1)],
            ApiKeyIdKeys = file.ApiKeyIdKeys is { Count: > 0 } idKeys ? idKeys : [NewKey(1)],
            ClusterAssertionKeys = file.ClusterAssertionKeys is { Count: > 0 } assertionKeys ? assertionKeys : [NewKey(1)],
            AuditSealKeys = file.AuditSealKeys is { Count: > 0 } sealKeys ? sealKeys : [NewKey(1)],
        });
        return Read(path);
    }

    private static FileStream LockKeyring(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return new FileStream(path + ".lock", options);
            }
            catch (IOException) when (attempt < 200)
            {
                // Held by another silo for the few milliseconds of its upgrade.
                Thread.Sleep(TimeSpan.FromMilliseconds(25));
            }
        }
    }

    private static KeyEncryptionKeyEntry NewKek(int version) => new(version, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));

    private static VersionedKeyEntry NewKey(int version) => new(version, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));

    // The first format held one hashing key; it reads as version 1.
    private static List<VersionedKeyEntry> HashingKeysOf(KeyringFile file) =>
        [.. file.ApiKeyHashingKey is { } legacy ? [new VersionedKeyEntry(1, legacy)] : Array.Empty<VersionedKeyEntry>(), .. file.ApiKeyHashingKeys ?? []];

    // Ascending by version, so the last one is current.
    private static List<VersionedSecret> Versions(IReadOnlyList<VersionedKeyEntry>? entries, string field, string path)
    {
        List<VersionedSecret> keys = [.. (entries ?? []).OrderBy(entry => entry.Version).Select(entry => new VersionedSecret(entry.Version, Convert.FromBase64String(entry.Key)))];
        if (keys.Count == 0 || keys.DistinctBy(key => key.Version).Count() != keys.Count || keys.Any(key => key.Version < 1 || key.Key.Length != 32))
        {
            throw new InvalidOperationException(
                $"The development keyring {path} needs at least one 32-byte key in {field}, with positive versions and no version twice (Bastion:Keys:KeyringPath).");
        }

        return keys;
    }

    private static KeyringFile Read(string path) =>
        JsonSerializer.Deserialize(File.ReadAllText(path), KeyringJsonContext.Default.KeyringFile)
            ?? throw new InvalidOperationException($"The development keyring {path} is empty (Bastion:Keys:KeyringPath).");

    // The first format held one key as signing_key_id/signing_key; it reads as a list of one, created at the epoch.
    private static List<SigningKeyEntry> SigningKeysOf(KeyringFile file)
    {
        var entries = new List<SigningKeyEntry>(file.SigningKeys ?? []);
        if (file.SigningKeyId is { } keyId && file.SigningKey is { } key)
        {
            entries.Add(new SigningKeyEntry(keyId, DateTimeOffset.UnixEpoch, key));
        }

        return entries;
    }

    private static SigningKeyEntry NewSigningKey(TimeProvider time)
    {
        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new SigningKeyEntry(
            Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), time.GetUtcNow(), Convert.ToBase64String(signingKey.ExportPkcs8PrivateKey()));
    }

    private static void Create(string path, TimeProvider time)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var file = new KeyringFile(
            Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            ApiKeyHashingKey: null,
            SigningKeyId: null,
            SigningKey: null,
            SigningKeys: [NewSigningKey(time)],
            KeyEncryptionKeys: [NewKek(1)],
            ApiKeyHashingKeys: [NewKey(1)],
            ApiKeyIdKeys: [NewKey(1)],
            ClusterAssertionKeys: [NewKey(1)],
            AuditSealKeys: [NewKey(1)]);
        Write(path, file, overwrite: false);
    }

    private static void Write(string path, KeyringFile file, bool overwrite = true)
    {
        var temporary = $"{path}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temporary, options))
        {
            JsonSerializer.Serialize(stream, file, KeyringJsonContext.Default.KeyringFile);
        }

        try
        {
            File.Move(temporary, path, overwrite);
        }
        catch (IOException) when (!overwrite && File.Exists(path))
        {
            // Another silo sharing this keyring created it first; the first one written is the keyring.
            File.Delete(temporary);
        }

        Interlocked.Increment(ref s_changes);
    }

    public void Dispose()
    {
        foreach (var key in _signingKeys)
        {
            key.Dispose();
        }
    }

    internal sealed record KeyringFile(
        [property: JsonPropertyName("pseudonym_key")] string PseudonymKey,
        [property: JsonPropertyName("api_key_hashing_key"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ApiKeyHashingKey,
        [property: JsonPropertyName("signing_key_id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SigningKeyId,
        [property: JsonPropertyName("signing_key"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SigningKey,
        [property: JsonPropertyName("signing_keys"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<SigningKeyEntry>? SigningKeys,
        [property: JsonPropertyName("key_encryption_keys"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<KeyEncryptionKeyEntry>? KeyEncryptionKeys = null,
        [property: JsonPropertyName("api_key_hashing_keys"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<VersionedKeyEntry>? ApiKeyHashingKeys = null,
        [property: JsonPropertyName("api_key_id_keys"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<VersionedKeyEntry>? ApiKeyIdKeys = null,
        [property: JsonPropertyName("cluster_assertion_keys"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<VersionedKeyEntry>? ClusterAssertionKeys = null,
        [property: JsonPropertyName("audit_seal_keys"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<VersionedKeyEntry>? AuditSealKeys = null);

    /// <summary>One version of a 256-bit key of a purpose that rotates by adding versions (the highest is current).</summary>
    internal sealed record VersionedKeyEntry(
        [property: JsonPropertyName("version")] int Version,
        [property: JsonPropertyName("key")] string Key);

    /// <summary>One AES-256 key-encryption key; its version is written beside every data key it wraps. A retired one keeps its version and loses its key.</summary>
    internal sealed record KeyEncryptionKeyEntry(
        [property: JsonPropertyName("version")] int Version,
        [property: JsonPropertyName("key"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key,
        [property: JsonPropertyName("retired"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool Retired = false);

    private sealed record KekSnapshot((DateTime, long) Stamp, List<VersionedSecret> Keks, long CheckedAt, long Changes);

    /// <summary>One ES256 signing key; <c>kid</c> names it in tokens and in the JWKS.</summary>
    internal sealed record SigningKeyEntry(
        [property: JsonPropertyName("kid")] string KeyId,
        [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
        [property: JsonPropertyName("key")] string Key);
}

[JsonSerializable(typeof(DevelopmentKeyring.KeyringFile))]
internal sealed partial class KeyringJsonContext : JsonSerializerContext;
