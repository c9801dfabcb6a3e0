using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>
/// A generated keyring file for development: one pseudonym key, one API-key hashing key and one
/// ES256 signing key. The file is created with mode 0600, and a file that group or others can read
/// is refused, because anyone who can read it can forge tokens and link pseudonyms to users.
/// </summary>
public sealed class DevelopmentKeyring : IKeyProvider, IDisposable
{
    private readonly byte[] _pseudonymKey;
    private readonly VersionedSecret _hashingKey;
    private readonly ECDsa _signingKey;

    private DevelopmentKeyring(KeyringFile file)
    {
        _pseudonymKey = Convert.FromBase64String(file.PseudonymKey);
        _hashingKey = new VersionedSecret(1, Convert.FromBase64String(file.ApiKeyHashingKey));
        _signingKey = ECDsa.Create();
        _signingKey.ImportPkcs8PrivateKey(Convert.FromBase64String(file.SigningKey), out _);
        var securityKey = new ECDsaSecurityKey(_signingKey) { KeyId = file.SigningKeyId };
        SigningCredentials = new SigningCredentials(securityKey, SecurityAlgorithms.EcdsaSha256);
        ValidationKeys = [securityKey];
    }

    public ReadOnlySpan<byte> PseudonymKey => _pseudonymKey;

    public VersionedSecret CurrentApiKeyHashingKey => _hashingKey;

    public SigningCredentials SigningCredentials { get; }

    public IReadOnlyList<SecurityKey> ValidationKeys { get; }

    public VersionedSecret? FindApiKeyHashingKey(int version) => version == _hashingKey.Version ? _hashingKey : null;

    /// <summary>Loads the keyring at <paramref name="path"/>, creating it first when it does not exist.</summary>
    public static DevelopmentKeyring LoadOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            Create(path);
        }

        if (!OperatingSystem.IsWindows()
            && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            throw new InvalidOperationException(
                $"The development keyring {path} is readable or writable by group or others. Restrict it (chmod 600) or delete it to generate a new one (Bastion:Keys:KeyringPath).");
        }

        var file = JsonSerializer.Deserialize(File.ReadAllText(path), KeyringJsonContext.Default.KeyringFile)
            ?? throw new InvalidOperationException($"The development keyring {path} is empty (Bastion:Keys:KeyringPath).");
        return new DevelopmentKeyring(file);
    }

    private static void Create(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var file = new KeyringFile(
            Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            Convert.ToBase64String(signingKey.ExportPkcs8PrivateKey()));
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temporary, options))
        {
            JsonSerializer.Serialize(stream, file, KeyringJsonContext.Default.KeyringFile);
        }

        File.Move(temporary, path, overwrite: false);
    }

    public void Dispose() => _signingKey.Dispose();

    internal sealed record KeyringFile(
        [property: JsonPropertyName("pseudonym_key")] string PseudonymKey,
        [property: JsonPropertyName("api_key_hashing_key")] string ApiKeyHashingKey,
        [property: JsonPropertyName("signing_key_id")] string SigningKeyId,
        [property: JsonPropertyName("signing_key")] string SigningKey);
}

[JsonSerializable(typeof(DevelopmentKeyring.KeyringFile))]
internal sealed partial class KeyringJsonContext : JsonSerializerContext;
