using System.Security.Cryptography;
using Bastion.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Cluster;

/// <summary>The public keys of the configured services, read once at start; a bad entry stops the silo, naming the setting.</summary>
public sealed class ServiceKeys
{
    private readonly Dictionary<string, ECDsaSecurityKey> _keys = new(StringComparer.Ordinal);

    public ServiceKeys(IOptions<ServiceAccessOptions> options)
    {
        for (var index = 0; index < options.Value.Services.Count; index++)
        {
            var service = options.Value.Services[index];
            var setting = $"{ServiceAccessOptions.SectionName}:Services:{index}";
            if (!System.ComponentModel.DataAnnotations.Validator.TryValidateObject(service, new(service), null, true))
            {
                throw new StartupException($"{setting}: every service needs a Name (1-128 letters, digits, '.', '_', '-', '@' or ':') and a PublicKeyFile.");
            }

            if (_keys.ContainsKey(service.Name))
            {
                throw new StartupException($"{setting}:Name: the service '{service.Name}' is configured twice.");
            }

            _keys[service.Name] = new ECDsaSecurityKey(Load(service.PublicKeyFile, $"{setting}:PublicKeyFile")) { KeyId = service.Name };
        }
    }

    /// <summary>The public key of the service with this exact name, or null when no such service is configured.</summary>
    public ECDsaSecurityKey? Find(string name) => _keys.GetValueOrDefault(name);

    private static ECDsa Load(string path, string setting)
    {
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"{setting}: the public key file cannot be read.");
        }

        // A private key does not belong on a silo: refuse it rather than quietly use its public half.
        if (!pem.Contains("-----BEGIN PUBLIC KEY-----", StringComparison.Ordinal) || pem.Contains("PRIVATE KEY", StringComparison.Ordinal))
        {
            throw new StartupException($"{setting}: the file must hold only a PEM public key (-----BEGIN PUBLIC KEY-----).");
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
        }
        catch (Exception exception) when (exception is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new StartupException($"{setting}: the file holds no PEM public key.");
        }

        if (key.KeySize != 256 || key.ExportParameters(false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            key.Dispose();
            throw new StartupException($"{setting}: the key must be a P-256 (ES256) key.");
        }

        return key;
    }
}
