using Microsoft.IdentityModel.Tokens;

namespace Bastion.Security;

/// <summary>The one JWS algorithm each kind of signing key is used with.</summary>
internal static class SigningKeyAlgorithms
{
    /// <summary>
    /// ES256 for a P-256 key, RS256 for an RSA key of at least 2048 bits, otherwise null. A token's
    /// <c>alg</c> must equal this for its <c>kid</c>'s key, so a public key is never used as an HMAC secret.
    /// </summary>
    public static string? For(SecurityKey key) => key switch
    {
        ECDsaSecurityKey { KeySize: 256 } => SecurityAlgorithms.EcdsaSha256,
        RsaSecurityKey { KeySize: >= 2048 } => SecurityAlgorithms.RsaSha256,
        _ => null,
    };
}
