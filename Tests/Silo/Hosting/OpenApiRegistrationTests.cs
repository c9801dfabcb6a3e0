using System.Net;
using System.Text.Json;
using Bastion.Hosting;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// The OpenAPI document (Development only, anonymous) describes every route with its response codes and the bearer
/// credential, and names no secret; the interactive page works offline.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class OpenApiRegistrationTests(SiloFixture fixture)
{
    private static readonly int[] Authenticated = [401, 403, 503];

    /// <summary>(method, path, response codes, needs a credential): written by hand from the handlers and filters.</summary>
    private static readonly (string Method, string Path, int[] Codes, bool Secured)[] Routes =
    [
        ("GET", "/v1/models", [200, .. Authenticated], true),
        ("GET", "/v1/models/{id}", [200, 404, .. Authenticated], true),
        ("POST", "/v1/completions", [200, 400, 404, 413, 415, 429, .. Authenticated], true),
        ("POST", "/v1/chat/completions", [200, 400, 404, 413, 415, 429, .. Authenticated], true),
        ("GET", "/v1/me", [200, .. Authenticated], true),
        ("GET", "/v1/me/usage", [200, .. Authenticated], true),
        ("DELETE", "/v1/me", [204, 409, .. Authenticated], true),
        ("POST", "/v1/auth/token", [200, 400, 401, 413, 415, 429], false),
        ("GET", "/.well-known/jwks.json", [200], false),
        ("GET", "/healthz", [200], false),
        ("GET", "/readyz", [200, 503], false),
        ("GET", "/metrics", [200, .. Authenticated], true),
        ("GET", "/admin/users", [200, 400, .. Authenticated], true),
        ("POST", "/admin/users", [201, 400, 409, 413, 415, .. Authenticated], true),
        ("GET", "/admin/users/{id}", [200, 400, 404, .. Authenticated], true),
        ("DELETE", "/admin/users/{id}", [204, 400, 404, 409, .. Authenticated], true),
        ("PUT", "/admin/users/{id}/roles", [200, 400, 404, 409, 413, 415, .. Authenticated], true),
        ("PUT", "/admin/users/{id}/limits", [200, 400, 404, 409, 413, 415, .. Authenticated], true),
        ("POST", "/admin/users/{id}/api-keys", [201, 400, 404, 409, 413, 415, .. Authenticated], true),
        ("DELETE", "/admin/users/{id}/api-keys/{keyId}", [204, 400, 404, .. Authenticated], true),
        ("POST", "/admin/users/{id}/suspend", [204, 404, .. Authenticated], true),
        ("POST", "/admin/users/{id}/resume", [204, 404, 409, .. Authenticated], true),
        ("POST", "/admin/users/{id}/revoke-tokens", [204, 404, .. Authenticated], true),
        ("GET", "/admin/audit", [200, 400, .. Authenticated], true),
        ("GET", "/admin/emergency", [200, .. Authenticated], true),
        ("PUT", "/admin/emergency", [200, 400, 413, 415, .. Authenticated], true),
        ("GET", "/admin/keys", [200, .. Authenticated], true),
        ("POST", "/admin/keys/rewrap", [202, 409, .. Authenticated], true),
        ("GET", "/admin/keys/rewrap", [200, .. Authenticated], true),
        ("POST", "/admin/keys/kek/{version}/retire", [204, 400, 404, 409, .. Authenticated], true),
    ];

    [Fact]
    public async Task Document_DescribesExactlyEveryRoute_WithItsResponseCodesAndCredential()
    {
        var (document, _) = await FetchDocumentAsync();

        var paths = document.GetProperty("paths");
        var described = paths.EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Where(o => o.Name is "get" or "post" or "put" or "delete" or "patch").Select(o => $"{o.Name.ToUpperInvariant()} {path.Name}"))
            .Order(StringComparer.Ordinal);
        Assert.Equal(Routes.Select(r => $"{r.Method} {r.Path}").Order(StringComparer.Ordinal), described);
        foreach (var (method, path, codes, secured) in Routes)
        {
            var operation = paths.GetProperty(path).GetProperty(method.ToLowerInvariant());
            var responses = operation.GetProperty("responses").EnumerateObject().Select(r => int.Parse(r.Name, System.Globalization.CultureInfo.InvariantCulture)).Order();
            Assert.True(codes.Order().SequenceEqual(responses), $"{method} {path}: expected {string.Join(",", codes.Order())}, described {string.Join(",", responses)}");
            Assert.True(operation.TryGetProperty("summary", out var summary) && summary.GetString()!.Length > 0, $"{method} {path} has no summary");
            Assert.Equal(secured, operation.TryGetProperty("security", out _));
            foreach (var problem in codes.Where(c => c >= 400 && path is not ("/metrics" or "/readyz")))
            {
                Assert.True(operation.GetProperty("responses").GetProperty(problem.ToString(System.Globalization.CultureInfo.InvariantCulture)).GetProperty("content").TryGetProperty("application/problem+json", out _),
                    $"{method} {path} {problem} is not described as problem+json");
            }
        }

        var scheme = document.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer");
        Assert.Equal("http", scheme.GetProperty("type").GetString());
        Assert.Equal("bearer", scheme.GetProperty("scheme").GetString());
    }

    [Fact]
    public async Task Document_DescribesBodiesInTheirWireShape()
    {
        var (document, text) = await FetchDocumentAsync();

        var body = document.GetProperty("paths").GetProperty("/admin/users").GetProperty("post").GetProperty("requestBody").GetProperty("content");
        Assert.True(body.TryGetProperty("application/json", out _));
        var completion = document.GetProperty("paths").GetProperty("/v1/chat/completions").GetProperty("post");
        Assert.True(completion.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
        Assert.True(completion.GetProperty("responses").GetProperty("200").GetProperty("content").TryGetProperty("text/event-stream", out _));
        Assert.Contains("\"max_tokens\"", text, StringComparison.Ordinal);
        Assert.Contains("\"context_length\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\"MaxTokens\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Document_NamesNoSecret()
    {
        var silo = fixture.Silo;
        var userKey = await silo.CreateUserWithKeyAsync("openapi-" + Guid.NewGuid().ToString("N"), "user");

        var (_, text) = await FetchDocumentAsync();

        Assert.DoesNotContain(silo.AdminKey, text, StringComparison.Ordinal);
        Assert.DoesNotContain(userKey, text, StringComparison.Ordinal);
        Assert.DoesNotContain(silo.DataDirectory, text, StringComparison.Ordinal);
        foreach (var secretish in new[] { "password", "connectionstring", "keyring", "BEGIN ", "PRIVATE KEY", "Host=" })
        {
            Assert.DoesNotContain(secretish, text, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task InteractivePage_IsServedInDevelopment_FromEmbeddedAssetsOnly()
    {
        using var page = await fixture.Silo.Http.GetAsync("/openapi/index.html");

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotContain("src=\"http", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("href=\"http", html, StringComparison.OrdinalIgnoreCase);
        using var config = await fixture.Silo.Http.GetAsync("/openapi/index.js");
        Assert.Contains(OpenApiRegistration.DocumentPath, await config.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private async Task<(JsonElement Document, string Text)> FetchDocumentAsync()
    {
        // Anonymous: the document is public in Development.
        using var response = await fixture.Silo.Http.GetAsync(OpenApiRegistration.DocumentPath);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        return (JsonDocument.Parse(text).RootElement.Clone(), text);
    }
}
