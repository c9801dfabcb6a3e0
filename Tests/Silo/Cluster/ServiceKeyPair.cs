using System.Security.Cryptography;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>A service's P-256 key pair written as PEM files: the public half for silos, the private half for the client.</summary>
public sealed record ServiceKeyPair(string Name, string PublicKeyFile, string PrivateKeyFile)
{
    public static ServiceKeyPair Create(string directory, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var publicFile = Path.Combine(directory, $"{name}.pub.pem");
        var privateFile = Path.Combine(directory, $"{name}.key.pem");
        File.WriteAllText(publicFile, key.ExportSubjectPublicKeyInfoPem());
        File.WriteAllText(privateFile, key.ExportPkcs8PrivateKeyPem());
        return new ServiceKeyPair(name, publicFile, privateFile);
    }

    /// <summary>Silo settings that configure these services.</summary>
    public static Dictionary<string, string?> Settings(params ServiceKeyPair[] services)
    {
        var settings = new Dictionary<string, string?>();
        for (var index = 0; index < services.Length; index++)
        {
            settings[$"Bastion:Cluster:Services:{index}:Name"] = services[index].Name;
            settings[$"Bastion:Cluster:Services:{index}:PublicKeyFile"] = services[index].PublicKeyFile;
        }

        return settings;
    }
}
