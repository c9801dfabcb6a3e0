using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Security.KeyVault.Secrets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Bastion.Tests.Silo.Security;

/// <summary>
/// A local HTTPS server that speaks the part of the Key Vault secrets REST protocol that
/// <see cref="SecretClient"/> uses: the bearer challenge, paged version lists, reading a version, and (for the
/// operator CLI's rotation) setting a secret (<c>PUT /secrets/{name}</c>) and updating a version's attributes and tags
/// (<c>PATCH /secrets/{name}/{version}</c>).
/// Azure itself cannot run here; everything on the client side (SecretClient, its challenge policy,
/// paging, TLS) is the real thing. Its certificate comes from a test CA that only <see cref="CreateClient"/> trusts.
/// </summary>
public sealed class StandInKeyVault : IAsyncDisposable
{
    private const string Token = "stand-in-access-token";
    private readonly WebApplication _app;
    private readonly X509Certificate2 _ca;
    private readonly ConcurrentDictionary<string, List<Version>> _secrets = new(StringComparer.OrdinalIgnoreCase);

    private StandInKeyVault(WebApplication app, X509Certificate2 ca)
    {
        _app = app;
        _ca = ca;
        VaultUri = new Uri("https://localhost/");
    }

    public Uri VaultUri { get; private set; }

    /// <summary>While true every connection is dropped, as by a vault that cannot be reached.</summary>
    public bool Unreachable { get; set; }

    /// <summary>Version lists are served this many to a page, so that clients must follow <c>nextLink</c>.</summary>
    public int PageSize { get; set; } = 2;

    /// <summary>Secret versions read so far, for checking that known versions are not re-read.</summary>
    public int SecretReads;

    /// <summary>Requests refused with a bearer challenge so far.</summary>
    public int Challenges;

    public static async Task<StandInKeyVault> StartAsync()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Bastion stand-in vault CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        var now = DateTimeOffset.UtcNow;
        using var caWithKey = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        var ca = X509CertificateLoader.LoadCertificate(caWithKey.Export(X509ContentType.Cert));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var issued = serverRequest.Create(caWithKey, now.AddDays(-1), now.AddDays(1), RandomNumberGenerator.GetBytes(8));
        using var withKey = issued.CopyWithPrivateKey(serverKey);
        var server = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            listen.UseHttps(server);
        }));
        var app = builder.Build();
        var vault = new StandInKeyVault(app, ca);
        app.Run(vault.HandleAsync);
        await app.StartAsync();
        vault.VaultUri = new Uri($"https://localhost:{new Uri(app.Urls.First()).Port}/");
        return vault;
    }

    /// <summary>Adds a version of <paramref name="name"/>, tagged with its Bastion version number.</summary>
    public string AddVersion(string name, string value, int bastionVersion, DateTimeOffset createdOn, bool enabled = true) =>
        AddVersion(name, value, new Dictionary<string, string> { ["bastion-version"] = bastionVersion.ToString(System.Globalization.CultureInfo.InvariantCulture) }, createdOn, enabled);

    /// <summary>Adds a version of <paramref name="name"/>; <paramref name="contentType"/> as Key Vault sets it on a certificate's secret.</summary>
    public string AddVersion(string name, string value, IReadOnlyDictionary<string, string> tags, DateTimeOffset createdOn, bool enabled = true, string? contentType = null)
    {
        var version = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var versions = _secrets.GetOrAdd(name, _ => []);
        lock (versions)
        {
            versions.Add(new Version(version, value, enabled, createdOn, createdOn, tags, contentType));
        }

        return version;
    }

    /// <summary>A real <see cref="SecretClient"/> for this vault: TLS trusting only the test CA, a fixed test token.</summary>
    public SecretClient CreateClient()
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions =
            {
                RemoteCertificateValidationCallback = PinnedCa.Trusting(_ca),
            },
        };
        var options = new SecretClientOptions
        {
            // The challenge names a resource that is not *.vault.azure.net; only Development may allow that.
            DisableChallengeResourceVerification = true,
            Transport = new HttpClientTransport(new HttpClient(handler)),
        };
        options.Retry.MaxRetries = 0;
        return new SecretClient(VaultUri, new FixedTokenCredential(), options);
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (Unreachable)
        {
            context.Abort();
            return;
        }

        if (context.Request.Headers.Authorization.ToString() != "Bearer " + Token)
        {
            Interlocked.Increment(ref Challenges);
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate =
                "Bearer authorization=\"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000\", resource=\"https://vault.azure.net\"";
            return;
        }

        var segments = context.Request.Path.Value!.Trim('/').Split('/');
        if (HttpMethods.IsPut(context.Request.Method) && segments is ["secrets", var newName] && context.Request.Query.ContainsKey("api-version"))
        {
            await SetAsync(context, newName);
            return;
        }

        if (segments is not ["secrets", var name, var part] || !context.Request.Query.ContainsKey("api-version") || !_secrets.TryGetValue(name, out var versions))
        {
            await WriteErrorAsync(context, StatusCodes.Status404NotFound, "SecretNotFound");
            return;
        }

        List<Version> snapshot;
        lock (versions)
        {
            snapshot = [.. versions];
        }

        if (HttpMethods.IsPatch(context.Request.Method))
        {
            await UpdateAsync(context, name, versions, part);
            return;
        }

        if (part == "versions")
        {
            var skip = int.TryParse(context.Request.Query["$skiptoken"], out var skipped) ? skipped : 0;
            var page = new JsonArray([.. snapshot.Skip(skip).Take(PageSize).Select(version => Describe(name, version, withValue: false))]);
            var body = new JsonObject { ["value"] = page };
            if (skip + PageSize < snapshot.Count)
            {
                body["nextLink"] = $"{VaultUri}secrets/{name}/versions?api-version={context.Request.Query["api-version"]}&$skiptoken={skip + PageSize}";
            }

            await context.Response.WriteAsJsonAsync(body);
            return;
        }

        Interlocked.Increment(ref SecretReads);
        if (snapshot.Find(version => version.Id == part) is not { } found)
        {
            await WriteErrorAsync(context, StatusCodes.Status404NotFound, "SecretNotFound");
            return;
        }

        if (!found.Enabled)
        {
            await WriteErrorAsync(context, StatusCodes.Status403Forbidden, "Forbidden");
            return;
        }

        await context.Response.WriteAsJsonAsync(Describe(name, found, withValue: true));
    }

    // Set Secret: a new version with the body's value, tags and enabled attribute.
    private async Task SetAsync(HttpContext context, string name)
    {
        var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject;
        if (body?["value"]?.GetValue<string>() is not { } value)
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, "BadParameter");
            return;
        }

        var now = DateTimeOffset.UtcNow;
        var created = new Version(
            Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), value, body["attributes"]?["enabled"]?.GetValue<bool>() ?? true, now, now, TagsOf(body) ?? new Dictionary<string, string>(), body["contentType"]?.GetValue<string>());
        var versions = _secrets.GetOrAdd(name, _ => []);
        lock (versions)
        {
            versions.Add(created);
        }

        await context.Response.WriteAsJsonAsync(Describe(name, created, withValue: true));
    }

    // Update Secret: a version's enabled attribute and tags; anything the body leaves out stays as it was.
    private async Task UpdateAsync(HttpContext context, string name, List<Version> versions, string id)
    {
        var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject;
        Version? updated = null;
        lock (versions)
        {
            var index = versions.FindIndex(version => version.Id == id);
            if (index >= 0 && body is not null)
            {
                var old = versions[index];
                updated = old with
                {
                    Enabled = body["attributes"]?["enabled"]?.GetValue<bool>() ?? old.Enabled,
                    Tags = TagsOf(body) ?? old.Tags,
                    UpdatedOn = DateTimeOffset.UtcNow,
                };
                versions[index] = updated;
            }
        }

        if (updated is null)
        {
            await WriteErrorAsync(context, body is null ? StatusCodes.Status400BadRequest : StatusCodes.Status404NotFound, body is null ? "BadParameter" : "SecretNotFound");
            return;
        }

        await context.Response.WriteAsJsonAsync(Describe(name, updated, withValue: false));
    }

    private static Dictionary<string, string>? TagsOf(JsonObject body) =>
        body["tags"] is JsonObject tags ? tags.ToDictionary(tag => tag.Key, tag => tag.Value!.GetValue<string>(), StringComparer.Ordinal) : null;

    private JsonObject Describe(string name, Version version, bool withValue)
    {
        var body = new JsonObject
        {
            ["id"] = $"{VaultUri}secrets/{name}/{version.Id}",
            ["attributes"] = new JsonObject
            {
                ["enabled"] = version.Enabled, ["created"] = version.CreatedOn.ToUnixTimeSeconds(), ["updated"] = version.UpdatedOn.ToUnixTimeSeconds(), ["recoveryLevel"] = "Recoverable",
            },
            ["tags"] = new JsonObject([.. version.Tags.Select(tag => KeyValuePair.Create(tag.Key, (JsonNode?)tag.Value))]),
        };
        if (version.ContentType is not null)
        {
            body["contentType"] = version.ContentType;
        }

        if (withValue)
        {
            body["value"] = version.Value;
        }

        return body;
    }

    private static Task WriteErrorAsync(HttpContext context, int status, string code)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new JsonObject { ["error"] = new JsonObject { ["code"] = code, ["message"] = "stand-in vault: " + code } });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        _ca.Dispose();
    }

    /// <summary>The seven key secrets a silo on the Key Vault provider needs (default names), each with one version created a day ago.</summary>
    public void AddBastionKeys()
    {
        var options = new Bastion.Security.KeyVaultOptions();
        var created = DateTimeOffset.UtcNow.AddDays(-1);
        AddVersion(options.PseudonymKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, created);
        AddVersion(options.ApiKeyHashingKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, created);
        AddVersion(options.ApiKeyIdKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, created);
        AddVersion(options.ClusterAssertionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, created);
        AddVersion(options.AuditSealKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, created);
        AddVersion(options.KeyEncryptionKeySecret, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), 1, created);
        using var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        AddVersion(options.SigningKeySecret, signing.ExportPkcs8PrivateKeyPem(), 1, created);
    }

    private sealed record Version(string Id, string Value, bool Enabled, DateTimeOffset CreatedOn, DateTimeOffset UpdatedOn, IReadOnlyDictionary<string, string> Tags, string? ContentType);

    /// <summary>Azure AD cannot run here: a credential that hands out the one token the stand-in accepts.</summary>
    private sealed class FixedTokenCredential : TokenCredential
    {
        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            new(Token, DateTimeOffset.UtcNow.AddHours(1));

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            new(GetToken(requestContext, cancellationToken));
    }
}
