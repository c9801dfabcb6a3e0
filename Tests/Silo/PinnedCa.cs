using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Tests.Silo;

/// <summary>TLS server validation for test clients: the host name must match and the chain must end at exactly one test CA.</summary>
public static class PinnedCa
{
    public static RemoteCertificateValidationCallback Trusting(X509Certificate2 ca) => (_, certificate, _, errors) =>
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(new X509Certificate2(certificate));
    };
}
