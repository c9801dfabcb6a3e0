using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Bastion.Tests.Silo.Security;

/// <summary>
/// A compact JWS assembled member by member from raw JSON values, so a test can write what no
/// well-behaved library would: duplicates, wrong types, forbidden header members, any signature.
/// </summary>
internal sealed class ForgedToken
{
    public const string Issuer = "bastion";
    public const string Audience = "bastion-api";

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public List<KeyValuePair<string, string>> Header { get; } = [];

    public List<KeyValuePair<string, string>> Payload { get; } = [];

    /// <summary>What Bastion itself issues at <paramref name="now"/> (Unix seconds) for 15 minutes.</summary>
    public static ForgedToken Valid(string kid, long now, string alg = "ES256")
    {
        var token = new ForgedToken();
        token.Header.AddRange([Member("alg", Text(alg)), Member("typ", Text("at+jwt")), Member("kid", Text(kid))]);
        token.Payload.AddRange(
        [
            Member("iss", Text(Issuer)), Member("aud", Text(Audience)), Member("sub", Text("pseudonym-1")),
            Member("jti", Text("5f0c1e2d")), Member("iat", $"{now}"), Member("nbf", $"{now}"), Member("exp", $"{now + 900}"),
            Member("key_id", Text("key-1")), Member("rev", "3"),
        ]);
        return token;
    }

    public static KeyValuePair<string, string> Member(string name, string rawJson) => new(name, rawJson);

    /// <summary>A JSON string literal.</summary>
    public static string Text(string value) => JsonSerializer.Serialize(value, Relaxed);

    public static string Encode(string text) => Encode(Encoding.UTF8.GetBytes(text));

    public static string Encode(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    public List<KeyValuePair<string, string>> Part(string part) => part == "header" ? Header : Payload;

    /// <summary>Replaces every member named <paramref name="name"/> (adding it when absent).</summary>
    public ForgedToken Set(string part, string name, string rawJson)
    {
        var members = Part(part);
        members.RemoveAll(member => member.Key == name);
        members.Add(Member(name, rawJson));
        return this;
    }

    public string SigningInput => Encode(Json(Header)) + "." + Encode(Json(Payload));

    public string Unsigned() => SigningInput + ".";

    public string SignEs256(ECDsa key) => SigningInput + "." + Encode(key.SignData(Encoding.ASCII.GetBytes(SigningInput), HashAlgorithmName.SHA256));

    public string SignRs256(RSA key) =>
        SigningInput + "." + Encode(key.SignData(Encoding.ASCII.GetBytes(SigningInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));

    public string SignHmac(string alg, byte[] secret)
    {
        var input = Encoding.ASCII.GetBytes(SigningInput);
        var mac = alg switch
        {
            "HS256" => HMACSHA256.HashData(secret, input),
            "HS384" => HMACSHA384.HashData(secret, input),
            _ => HMACSHA512.HashData(secret, input),
        };
        return SigningInput + "." + Encode(mac);
    }

    private static string Json(List<KeyValuePair<string, string>> members) =>
        "{" + string.Join(",", members.Select(member => Text(member.Key) + ":" + member.Value)) + "}";
}
