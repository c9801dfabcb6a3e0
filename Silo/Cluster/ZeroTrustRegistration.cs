using Bastion.Security;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Bastion.Cluster;

/// <summary>Wires zero trust into a silo: every incoming call verified, every outgoing call asserted (docs/zero-trust.md).</summary>
public static class ZeroTrustRegistration
{
    public static ISiloBuilder AddBastionZeroTrust(this ISiloBuilder silo)
    {
        silo.Services.AddOptions<ServiceAccessOptions>().BindConfiguration(ServiceAccessOptions.SectionName);
        silo.Services.AddSingleton<ServiceKeys>();
        silo.Services.AddSingleton<ServiceTokens>();
        silo.Services.AddSingleton<SiloAssertion>();

        // The facade pseudonymizes user ids and issues API keys on whichever silo it runs.
        silo.Services.TryAddSingleton<Pseudonymizer>();
        silo.Services.TryAddSingleton<ApiKeys>();
        silo.AddIncomingGrainCallFilter<ZeroTrustCallFilter>();
        silo.AddOutgoingGrainCallFilter<SiloAssertionFilter>();
        return silo;
    }
}
