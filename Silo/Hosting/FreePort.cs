using System.Net;
using System.Net.Sockets;

namespace Bastion.Hosting;

internal static class FreePort
{
    /// <summary>The configured port, or a free loopback port when it is 0.</summary>
    public static int OrPick(int configured)
    {
        if (configured != 0)
        {
            return configured;
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
