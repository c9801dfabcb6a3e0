using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace Bastion.Client.Tls;

/// <summary>Reads the kind of a cluster certificate from its subject alternative name URIs.</summary>
public static class ClusterCertificates
{
    /// <summary>The SAN URI that marks a silo certificate.</summary>
    public const string SiloUri = "urn:bastion:silo";

    /// <summary>The SAN URI prefix that marks a client certificate; the service name follows it.</summary>
    public const string ClientUriPrefix = "urn:bastion:client:";

    private const string SubjectAlternativeNameOid = "2.5.29.17";
    private static readonly Asn1Tag UniformResourceIdentifier = new(TagClass.ContextSpecific, 6);

    /// <summary>
    /// The certificate's kind, or null when it carries no Bastion URI, or both kinds (an ambiguous
    /// certificate is no certificate at all here).
    /// </summary>
    public static ClusterCertificateKind? KindOf(X509Certificate2 certificate)
    {
        var uris = UrisOf(certificate);
        var silo = uris.Contains(SiloUri, StringComparer.Ordinal);
        var client = uris.Any(uri => uri.StartsWith(ClientUriPrefix, StringComparison.Ordinal) && uri.Length > ClientUriPrefix.Length);
        return (silo, client) switch
        {
            (true, false) => ClusterCertificateKind.Silo,
            (false, true) => ClusterCertificateKind.Client,
            _ => null,
        };
    }

    /// <summary>The service a client certificate was issued to, or null for any other certificate.</summary>
    public static string? ServiceOf(X509Certificate2 certificate) =>
        KindOf(certificate) == ClusterCertificateKind.Client
            ? UrisOf(certificate).First(uri => uri.StartsWith(ClientUriPrefix, StringComparison.Ordinal))[ClientUriPrefix.Length..]
            : null;

    // .NET reads DNS names and IP addresses from the SAN extension, not URIs; this is the few lines of
    // ASN.1 (RFC 5280 GeneralNames, uniformResourceIdentifier [6] IA5String) that it lacks.
    private static List<string> UrisOf(X509Certificate2 certificate)
    {
        var uris = new List<string>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAlternativeNameOid)
            {
                continue;
            }

            try
            {
                var names = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
                while (names.HasData)
                {
                    if (names.PeekTag().HasSameClassAndValue(UniformResourceIdentifier))
                    {
                        uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, UniformResourceIdentifier));
                    }
                    else
                    {
                        names.ReadEncodedValue();
                    }
                }
            }
            catch (AsnContentException)
            {
                // A malformed extension names nothing.
                return [];
            }
        }

        return uris;
    }
}
