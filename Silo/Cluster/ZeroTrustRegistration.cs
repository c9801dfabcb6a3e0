using Bastion.Security;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Bastion.Cluster;

/// <summary>Wires zero trust into a silo: every incoming call verified, every outgoing call asserted (docs/zero-trust.md).</summary>
public static class ZeroTrustRegistration
{
    public static ISiloBuilder AddBastionZeroTrust(this ISiloBuilder silo, IConfiguration configuration)
    {
        // Read now, so that a bad service entry stops the silo before it joins the cluster.
        var services = configuration.GetSection(ServiceAccessOptions.SectionName).Get<ServiceAccessOptions>() ?? new ServiceAccessOptions();
        silo.Services.AddSingleton(new ServiceKeys(Microsoft.Extensions.Options.Options.Create(services)));
        silo.Services.AddSingleton<ServiceTokens>();
        silo.Services.AddSingleton<SiloAssertion>();
        silo.Services.AddSingleton<CallArgumentsDigest>();

        // The facade pseudonymizes user ids and issues API keys on whichever silo it runs.
        silo.Services.TryAddSingleton<Pseudonymizer>();
        silo.Services.TryAddSingleton<ApiKeys>();
        silo.AddIncomingGrainCallFilter<ZeroTrustCallFilter>();
        silo.AddOutgoingGrainCallFilter<SiloAssertionFilter>();
        return silo;
    }
}
