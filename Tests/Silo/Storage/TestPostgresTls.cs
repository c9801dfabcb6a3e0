using Bastion.Security;
using Bastion.Storage;

namespace Bastion.Tests.Silo.Storage;

/// <summary>
/// TLS for a test PostgreSQL server: a development CA and a loopback server certificate under a
/// directory. Outside Development a silo accepts only <c>SSL Mode=VerifyFull</c>, so the shared test
/// servers speak TLS and hand out connection strings that verify them, as a production server would.
/// </summary>
internal static class TestPostgresTls
{
    public static EmbeddedPostgresTls Create(string directory)
    {
        var (server, caFile) = DevelopmentCertificate.LoadOrCreate(directory, TimeProvider.System);
        server.Dispose();
        return new EmbeddedPostgresTls(Path.Combine(directory, "server.pem"), Path.Combine(directory, "server-key.pem"), caFile);
    }
}
