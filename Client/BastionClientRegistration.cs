using System.Net;
using Bastion.Client.Tls;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Bastion.Client;

/// <summary>Registers the Bastion client library.</summary>
public static class BastionClientRegistration
{
    /// <summary>
    /// Adds an Orleans client connected to a Bastion cluster (static gateways or ADO.NET clustering), the service's token
    /// issuer, and <see cref="BastionClient"/>. The client connects when the host starts, trying for
    /// <see cref="BastionClientOptions.ConnectTimeout"/>. Mutual TLS comes from <see cref="BastionClientOptions.Tls"/>.
    /// </summary>
    /// <exception cref="OptionsValidationException">The options are incomplete or invalid; each message names the setting.</exception>
    public static IServiceCollection AddBastionClient(this IServiceCollection services, Action<BastionClientOptions> configure)
    {
        var options = new BastionClientOptions();
        configure(options);
        if (options.Problems().ToList() is { Count: > 0 } problems)
        {
            throw new OptionsValidationException(BastionClientOptions.SectionName, typeof(BastionClientOptions), problems);
        }

        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new ServiceTokenIssuer(options.ServiceName, options.PrivateKeyFile, options.TokenLifetime, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<BastionClient>();
        services.AddOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(cluster =>
            {
                cluster.ClusterId = options.ClusterId;
                cluster.ServiceId = options.ServiceId;
            });
            client.Configure<ClientMessagingOptions>(messaging => messaging.ResponseTimeout = options.ResponseTimeout);
            if (options.Gateways.Count > 0)
            {
                client.UseStaticClustering([.. options.Gateways.Select(ToEndPoint)]);
            }
            else
            {
                client.UseAdoNetClustering(clustering =>
                {
                    clustering.Invariant = "Npgsql";
                    clustering.ConnectionString = options.ClusteringConnectionString;
                });
            }

            client.UseConnectionRetryFilter(new ConnectRetry(options.ConnectTimeout).ShouldRetryAsync);
            // A backend service's trace continues into the cluster (W3C traceparent in the request context). Spans are
            // made only when the service listens to the Microsoft.Orleans.* activity sources.
            client.AddActivityPropagation();

            if (options.Tls is not null)
            {
                client.UseBastionClusterTls(options.Tls, $"{BastionClientOptions.SectionName}:Tls");
            }

            options.Transport?.Invoke(client);
        });
        return services;
    }

    private static IPEndPoint ToEndPoint(string gateway)
    {
        BastionClientOptions.TryParseGateway(gateway, out var host, out var port);
        var address = IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host).First();
        return new IPEndPoint(address, port);
    }

    /// <summary>Keeps trying to reach a gateway at start until the connect timeout has passed.</summary>
    private sealed class ConnectRetry(TimeSpan timeout)
    {
        private readonly DateTimeOffset _giveUpAt = DateTimeOffset.UtcNow + timeout;

        public async Task<bool> ShouldRetryAsync(Exception exception, CancellationToken cancellationToken)
        {
            if (DateTimeOffset.UtcNow >= _giveUpAt)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
            return true;
        }
    }
}
