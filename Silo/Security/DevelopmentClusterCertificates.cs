using Bastion.Client.Tls;
using Bastion.Hosting;

namespace Bastion.Security;

/// <summary>
/// The development cluster CA and the silo and client certificates it issues, created once in a
/// directory that every member of a development cluster shares (<c>Bastion:Cluster:Tls:DevelopmentDirectory</c>).
/// The CA's private key is not kept: nothing else is ever issued from it.
/// </summary>
public static class DevelopmentClusterCertificates
{
    /// <summary>The service name in the development client certificate.</summary>
    public const string ClientService = "development";

    /// <summary>Loads the files from <paramref name="directory"/>, creating them if it does not exist yet.</summary>
    public static (ClusterTlsOptions Silo, ClusterTlsOptions Client) LoadOrCreate(string directory, TimeProvider time)
    {
        directory = Path.GetFullPath(directory);
        var files = FilesIn(directory);
        if (!Directory.Exists(directory))
        {
            Create(directory, time);
        }

        if (!File.Exists(files.Silo.CertificateFile) || !File.Exists(files.Client.CertificateFile))
        {
            throw new StartupException($"{ClusterTlsRegistration.SectionName}:DevelopmentDirectory ({directory}) is incomplete; delete it to have new development cluster certificates made.");
        }

        return files;
    }

    private static void Create(string directory, TimeProvider time)
    {
        // Members of a cluster may start at the same moment: each writes a complete set in a directory
        // of its own and renames it into place; the first rename wins and the others use its files.
        Directory.CreateDirectory(Path.GetDirectoryName(directory)!);
        var staging = $"{directory}.{Guid.NewGuid():N}";
        Directory.CreateDirectory(staging);
        var now = time.GetUtcNow();
        using (var authority = ClusterCertificateIssuer.CreateAuthority("Bastion Development Cluster CA", now, TimeSpan.FromDays(2 * 365)))
        using (var silo = ClusterCertificateIssuer.Issue(authority, ClusterCertificateKind.Silo, "", now, TimeSpan.FromDays(365)))
        using (var client = ClusterCertificateIssuer.Issue(authority, ClusterCertificateKind.Client, ClientService, now, TimeSpan.FromDays(365)))
        {
            var files = FilesIn(staging);
            DevelopmentCertificate.WriteFile(files.Silo.CaFile!, authority.ExportCertificatePem(), secret: false);
            ClusterCertificateIssuer.WriteFiles(silo, files.Silo.CertificateFile!, files.Silo.KeyFile!);
            ClusterCertificateIssuer.WriteFiles(client, files.Client.CertificateFile!, files.Client.KeyFile!);
        }

        try
        {
            Directory.Move(staging, directory);
        }
        catch (IOException) when (Directory.Exists(directory))
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    private static (ClusterTlsOptions Silo, ClusterTlsOptions Client) FilesIn(string directory)
    {
        var ca = Path.Combine(directory, "ca.pem");
        return (
            new ClusterTlsOptions { CertificateFile = Path.Combine(directory, "silo.pem"), KeyFile = Path.Combine(directory, "silo-key.pem"), CaFile = ca },
            new ClusterTlsOptions { CertificateFile = Path.Combine(directory, "client.pem"), KeyFile = Path.Combine(directory, "client-key.pem"), CaFile = ca });
    }
}
