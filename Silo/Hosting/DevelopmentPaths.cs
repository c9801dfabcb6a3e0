namespace Bastion.Hosting;

/// <summary>The files a development node keeps under its data directory.</summary>
public sealed record DevelopmentPaths(string DataDirectory)
{
    public string Postgres => Path.Combine(DataDirectory, "postgres");
    public string Keyring => Path.Combine(DataDirectory, "keyring.json");
    public string Tls => Path.Combine(DataDirectory, "tls");
    public string ClusterTls => Path.Combine(DataDirectory, "cluster-tls");
    public string Models => Path.Combine(DataDirectory, "models");
    public string AdminKey => Path.Combine(DataDirectory, "admin-api-key");
}
