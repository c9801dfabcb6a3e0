using System.Security.Cryptography;
using Bastion.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Api;

/// <summary><c>GET /.well-known/jwks.json</c>: the public half of every key an access token may be signed with.</summary>
public static class JwksApi
{
    public static IEndpointRouteBuilder MapJwksApi(this IEndpointRouteBuilder routes)
    {
        // Public keys are public: anyone who verifies Bastion's tokens needs them, and rotation by kid needs them fetched anew.
        routes.MapGet("/.well-known/jwks.json", GetKeys).AllowAnonymousCaller()
            .WithTags("Authentication").WithSummary("The public keys that verify Bastion's access tokens (JWKS).").Produces<JsonWebKeySetResponse>();
        return routes;
    }

    private static JsonHttpResult<JsonWebKeySetResponse> GetKeys(HttpContext context, IKeyProvider keys)
    {
        context.Response.Headers.CacheControl = "public, max-age=300";
        var published = keys.ValidationKeys.Select(ToPublicJwk).OfType<PublicJsonWebKey>().ToList();
        return TypedResults.Json(new JsonWebKeySetResponse(published), ApiJsonContext.Default.JsonWebKeySetResponse);
    }

    // Only public parameters are ever exported (ExportParameters(false)), so no private member can reach the wire.
    private static PublicJsonWebKey? ToPublicJwk(SecurityKey key)
    {
        var algorithm = SigningKeyAlgorithms.For(key);
        switch (key)
        {
            case ECDsaSecurityKey ec when algorithm is not null:
                var point = ec.ECDsa.ExportParameters(includePrivateParameters: false);
                return point.Curve.Oid.Value == ECCurve.NamedCurves.nistP256.Oid.Value
                    ? new PublicJsonWebKey("EC", "sig", key.KeyId, algorithm, "P-256", Encode(point.Q.X!), Encode(point.Q.Y!), null, null)
                    : null;
            case RsaSecurityKey rsa when algorithm is not null:
                var parameters = rsa.Rsa?.ExportParameters(includePrivateParameters: false) ?? rsa.Parameters;
                return new PublicJsonWebKey("RSA", "sig", key.KeyId, algorithm, null, null, null, Encode(parameters.Modulus!), Encode(parameters.Exponent!));
            default:
                return null;
        }
    }

    private static string Encode(byte[] value) => System.Buffers.Text.Base64Url.EncodeToString(value);
}
