using System.Buffers;
using System.Text.Json;

namespace Bastion.Security;

/// <summary>The only JOSE header an access token may carry.</summary>
/// <param name="Algorithm">ES256 or RS256.</param>
/// <param name="KeyId">The <c>kid</c> of the key that must verify the signature.</param>
internal sealed record AccessTokenHeader(string Algorithm, string KeyId);

/// <summary>The claims Bastion reads from an access token, each present with its JSON type.</summary>
internal sealed record AccessTokenClaims(
    string Issuer, string Audience, string Subject, string TokenId, long IssuedAt, long NotBefore, long Expires, string KeyId, long RevocationGeneration);

/// <summary>
/// Reads a compact JWS strictly, before any signature check (RFC 8725): size and alphabet, exactly
/// three non-empty parts, a header of only <c>alg</c>, <c>typ</c> and <c>kid</c>, every required claim
/// with its JSON type, and no member named twice. The handler's own parser takes the last of
/// duplicate members, so duplicates are found here, where the decoded JSON is read token by token.
/// Unknown payload claims are allowed (RFC 9068) but never read.
/// </summary>
internal static class AccessTokenReader
{
    public const string TokenType = "at+jwt";
    public const string KeyIdClaim = "key_id";
    public const string GenerationClaim = "rev";

    private static readonly SearchValues<char> CompactAlphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");

    public static bool TryRead(string token, int maxBytes, out AccessTokenHeader? header, out AccessTokenClaims? claims)
    {
        claims = null;
        if (!TryReadCompact(token, maxBytes, TokenType, out header, out var payload))
        {
            return false;
        }

        try
        {
            claims = ReadClaims(payload);
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            claims = null;
        }

        return claims is not null;
    }

    /// <summary>
    /// The strict, keyless part shared by every JWS Bastion reads (access tokens, service tokens): size and
    /// alphabet, three non-empty parts, a header of only <c>alg</c> (ES256 or RS256), <c>typ</c> (exactly
    /// <paramref name="tokenType"/>) and <c>kid</c>, each once; the decoded payload is returned for the caller's claim reader.
    /// </summary>
    public static bool TryReadCompact(string token, int maxBytes, string tokenType, out AccessTokenHeader? header, out byte[] payload)
    {
        header = null;
        payload = [];

        // The alphabet is ASCII, so once it holds, characters and UTF-8 bytes are the same count.
        var span = token.AsSpan();
        if (span.Length is 0 || span.Length > maxBytes || span.ContainsAnyExcept(CompactAlphabet))
        {
            return false;
        }

        var firstDot = span.IndexOf('.');
        var lastDot = span.LastIndexOf('.');
        if (firstDot <= 0 || lastDot == firstDot || lastDot == span.Length - 1
            || span[(firstDot + 1)..lastDot].Contains('.') || lastDot == firstDot + 1)
        {
            return false;
        }

        try
        {
            header = ReadHeader(System.Buffers.Text.Base64Url.DecodeFromChars(span[..firstDot]), tokenType);
            payload = System.Buffers.Text.Base64Url.DecodeFromChars(span[(firstDot + 1)..lastDot]);
        }
        catch (Exception exception) when (exception is FormatException or JsonException or InvalidOperationException)
        {
            // Not base64url, not JSON, or a string that is not valid UTF-8: not a token.
            header = null;
            payload = [];
        }

        return header is not null;
    }

    private static AccessTokenHeader? ReadHeader(ReadOnlySpan<byte> json, string tokenType)
    {
        string? algorithm = null, type = null, keyId = null;
        var read = TryReadMembers(json, (string name, ref Utf8JsonReader reader) => reader.TokenType == JsonTokenType.String && name switch
        {
            "alg" => (algorithm = reader.GetString()) is not null,
            "typ" => (type = reader.GetString()) is not null,
            "kid" => (keyId = reader.GetString()) is not null,
            // crit, jku, x5u, x5c, x5t, jwk, zip, b64, cty, enc…: none is ever honoured, so none is accepted.
            _ => false,
        });

        if (!read
            || algorithm is not (Microsoft.IdentityModel.Tokens.SecurityAlgorithms.EcdsaSha256 or Microsoft.IdentityModel.Tokens.SecurityAlgorithms.RsaSha256)
            || !string.Equals(type, tokenType, StringComparison.Ordinal)
            || keyId is not { Length: > 0 })
        {
            return null;
        }

        return new AccessTokenHeader(algorithm, keyId);
    }

    private static AccessTokenClaims? ReadClaims(ReadOnlySpan<byte> json)
    {
        string? issuer = null, audience = null, subject = null, tokenId = null, keyId = null;
        long? issuedAt = null, notBefore = null, expires = null, generation = null;
        var read = TryReadMembers(json, (string name, ref Utf8JsonReader reader) => name switch
        {
            "iss" => TryString(ref reader, out issuer),
            "aud" => TryString(ref reader, out audience),
            "sub" => TryString(ref reader, out subject),
            "jti" => TryString(ref reader, out tokenId),
            KeyIdClaim => TryString(ref reader, out keyId),
            "iat" => TryNumericDate(ref reader, out issuedAt),
            "nbf" => TryNumericDate(ref reader, out notBefore),
            "exp" => TryNumericDate(ref reader, out expires),
            GenerationClaim => TryGeneration(ref reader, out generation),
            _ => reader.TrySkip(),
        });

        if (!read
            || issuer is null || audience is null || subject is null || tokenId is null || keyId is null
            || issuedAt is not { } iat || notBefore is not { } nbf || expires is not { } exp || generation is not { } rev)
        {
            return null;
        }

        return new AccessTokenClaims(issuer, audience, subject, tokenId, iat, nbf, exp, keyId, rev);
    }

    /// <summary>Reads one member's value (the reader stands on it); false refuses the whole object.</summary>
    internal delegate bool MemberReader(string name, ref Utf8JsonReader reader);

    /// <summary>
    /// Walks a JSON object that must be the whole of <paramref name="json"/>: each member named once (a duplicate
    /// refuses the object, where a lenient parser would take the last), each value handed to <paramref name="readMember"/>.
    /// </summary>
    internal static bool TryReadMembers(ReadOnlySpan<byte> json, MemberReader readMember)
    {
        var reader = new Utf8JsonReader(json);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            if (!seen.Add(name) || !reader.Read() || !readMember(name, ref reader))
            {
                return false;
            }
        }

        return IsWholeObject(ref reader);
    }

    // The loop ended on the object's end, and nothing follows it (trailing data makes Read throw).
    private static bool IsWholeObject(ref Utf8JsonReader reader) =>
        reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == 0 && !reader.Read();

    internal static bool TryString(ref Utf8JsonReader reader, out string? value)
    {
        value = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return value is { Length: > 0 };
    }

    // Bastion issues whole seconds; a fraction, a string or an exponent is not a token it wrote.
    internal static bool TryNumericDate(ref Utf8JsonReader reader, out long? value)
    {
        value = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var seconds) && seconds > 0 ? seconds : null;
        return value is not null;
    }

    private static bool TryGeneration(ref Utf8JsonReader reader, out long? value)
    {
        value = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var generation) && generation >= 0 ? generation : null;
        return value is not null;
    }
}
