using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// Every admin route, with every path parameter replaced by a malformed value and every paging query parameter given a
/// bad one, answers a 4xx problem (<c>application/problem+json</c>, a stable <c>type</c>, a <c>traceId</c>), never a
/// 500, and never echoes what it was sent. The table of routes and what each answers is the specification, written
/// by hand from the README and the admin API's documented rules (user ids: 1 to 128 of ASCII letters, digits,
/// <c>. _ - @ :</c>; key ids: the 24 hex digits of an issued key; KEK versions: positive integers; <c>limit</c>:
/// 1 to 500 users, 1 to 1000 audit events; <c>after</c>: a user id). A route mapped under <c>/admin</c> without a row
/// fails the test, so a new route is specified the day it lands.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class AdminRouteInputTests(SiloFixture fixture, ITestOutputHelper output)
{
    private const int BadRequest = 400;
    private const int NotFound = 404;
    private const int MethodNotAllowed = 405;
    private const int ListOfUsers = 200;

    /// <summary>
    /// 400 from the HTTP server itself, before any Bastion code runs, with an empty body: Kestrel refuses a request
    /// target that decodes to a NUL, and no middleware can dress that answer as a problem. Nothing is echoed either.
    /// </summary>
    private const int RefusedByServer = -400;

    /// <summary>What a well-formed value of each path parameter is, so that only the one under test is malformed.</summary>
    private static readonly Dictionary<string, string> WellFormed = new()
    {
        ["{id}"] = "input-nobody",
        ["{keyId}"] = "0123456789abcdef01234567",
        ["{version}"] = "999",
    };

    /// <summary>
    /// (method, route, a valid body, and per path parameter what an empty value answers). An empty segment makes the path
    /// another one: no route (404), or a route of other methods (405), or — for <c>GET /admin/users/</c> — the list of users.
    /// </summary>
    private static readonly AdminRoute[] Routes =
    [
        new("GET", "/admin/users", Query: ["limit", "after"]),
        new("POST", "/admin/users", Body: new { id = "input-" + Guid.NewGuid().ToString("N"), roles = new[] { "user" } }),
        new("GET", "/admin/users/{id}", Empty: new() { ["{id}"] = ListOfUsers }),
        new("DELETE", "/admin/users/{id}", Empty: new() { ["{id}"] = MethodNotAllowed }),
        new("PUT", "/admin/users/{id}/roles", Body: new { roles = new[] { "user" } }),
        new("PUT", "/admin/users/{id}/limits", Body: new { concurrency = 5 }),
        new("POST", "/admin/users/{id}/api-keys", Body: new { label = "input" }),
        new("DELETE", "/admin/users/{id}/api-keys/{keyId}", Empty: new() { ["{keyId}"] = MethodNotAllowed }),
        new("POST", "/admin/users/{id}/suspend"),
        new("POST", "/admin/users/{id}/resume"),
        new("POST", "/admin/users/{id}/revoke-tokens"),
        new("GET", "/admin/audit", Query: ["limit"]),
        new("GET", "/admin/emergency"),
        new("PUT", "/admin/emergency", Body: new { inference_stopped = false, changes_frozen = false }),
        new("GET", "/admin/keys"),
        new("POST", "/admin/keys/rewrap"),
        new("GET", "/admin/keys/rewrap"),
        new("POST", "/admin/keys/kek/{version}/retire"),
    ];

    /// <summary>
    /// Malformed path segments, as sent on the wire (percent-encoded where a client must encode), and what each answers
    /// when it reaches the route: 400, or 404 where the server's path normalization leaves no such route.
    /// </summary>
    private static readonly (string Case, string Segment, int Expected)[] BadSegments =
    [
        ("too long", new string('a', 129), BadRequest),
        ("NUL", "a%00b", RefusedByServer),
        ("line feed", "a%0Ab", BadRequest),
        ("CR LF and a header", "a%0D%0ASet-Cookie:%20injected=1", BadRequest),
        ("tab", "a%09b", BadRequest),
        ("DEL", "a%7Fb", BadRequest),
        ("space", "a%20b", BadRequest),
        ("percent", "100%25", BadRequest),
        ("encoded slash", "a%2Fb", BadRequest),
        ("encoded backslash", "a%5Cb", BadRequest),
        ("dot-dot", "..", NotFound),
        ("encoded dot-dot", "%2E%2E", NotFound),
        ("fullwidth letters", Uri.EscapeDataString("ａｌｉｃｅ"), BadRequest),
        ("Cyrillic homoglyph", Uri.EscapeDataString("аlice"), BadRequest),
        ("accented letter", Uri.EscapeDataString("josé"), BadRequest),
        ("right-to-left override", Uri.EscapeDataString("a\u202Eb"), BadRequest),
        ("zero-width space", Uri.EscapeDataString("a\u200Bb"), BadRequest),
        ("markup", Uri.EscapeDataString("<script>alert(1)</script>"), BadRequest),
        ("SQL", Uri.EscapeDataString("x' OR '1'='1"), BadRequest),
        ("JSON", Uri.EscapeDataString("{\"$ne\":null}"), BadRequest),
    ];

    /// <summary>Values no KEK version may take, beyond the segments every parameter refuses.</summary>
    private static readonly string[] BadVersions = ["abc", "0", "-1", "+1", "1.0", "1e3", "0x1", "99999999999", "%201", Uri.EscapeDataString("１"), Uri.EscapeDataString("١")];

    /// <summary>Values no paging <c>limit</c> may take (beyond the route's own maximum, added per route).</summary>
    private static readonly string[] BadLimits = ["abc", "-1", "0", "99999999999", "1.5", "%00", Uri.EscapeDataString("１"), "1&limit=2"];

    /// <summary>The most items a page may hold, per route with a <c>limit</c>: 500 users, the audit log's 1000 events.</summary>
    private static readonly Dictionary<string, int> MaxLimit = new() { ["/admin/users"] = 500, ["/admin/audit"] = 1000 };

    private static readonly string[] InternalMarkers = ["System.", "Exception", "   at ", "/work/", "/tmp/", "SELECT", "Npgsql", "Orleans", "Bastion."];

    [Fact]
    public void EveryMappedAdminRoute_HasARowInTheTable()
    {
        var mapped = fixture.Silo.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/admin", StringComparison.Ordinal))
            .Select(e => $"{e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods.Single() ?? "GET"} {e.RoutePattern.RawText!.TrimEnd('/')}")
            .Order(StringComparer.Ordinal);

        Assert.Equal(Routes.Select(r => $"{r.Method} {r.Template}").Order(StringComparer.Ordinal), mapped);
    }

    [Fact]
    public async Task MalformedPathParameters_OnEveryAdminRoute_GetAProblemNever500_AndAreNotEchoed()
    {
        var failures = new List<string?>();
        var cases = 0;
        foreach (var route in Routes)
        {
            foreach (var parameter in WellFormed.Keys.Where(p => route.Template.Contains(p, StringComparison.Ordinal)))
            {
                var segments = BadSegments.Select(c => (c.Case, c.Segment, c.Expected))
                    .Append(("empty", "", route.Empty is { } empty && empty.TryGetValue(parameter, out var answer) ? answer : NotFound));
                if (parameter == "{version}")
                {
                    segments = segments.Concat(BadVersions.Select(v => ($"version {v}", v, BadRequest)));
                }

                foreach (var (name, segment, expected) in segments)
                {
                    var path = WellFormed.Aggregate(route.Template, (p, pair) => p.Replace(pair.Key, pair.Key == parameter ? segment : pair.Value, StringComparison.Ordinal));
                    failures.Add(await CheckAnswerAsync(route, path, segment, expected, $"{route.Method} {route.Template}, {parameter} {name}"));
                    cases++;
                }
            }
        }

        output.WriteLine($"{cases} cases");
        foreach (var failure in failures.OfType<string>())
        {
            output.WriteLine("FAILED " + failure);
        }

        Assert.Empty(failures.OfType<string>());
        Assert.True(cases > 200, $"only {cases} cases ran");
    }

    [Fact]
    public async Task BadPagingQueryValues_OnEveryAdminRouteThatPages_Get400Never500_AndAreNotEchoed()
    {
        var failures = new List<string?>();
        var cases = 0;
        foreach (var route in Routes.Where(r => r.Query is not null))
        {
            if (route.Query!.Contains("limit"))
            {
                foreach (var value in BadLimits.Append((MaxLimit[route.Template] + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)))
                {
                    failures.Add(await CheckAnswerAsync(route, $"{route.Template}?limit={value}", value, BadRequest, $"{route.Method} {route.Template}?limit={value}"));
                    cases++;
                }
            }

            if (route.Query.Contains("after"))
            {
                foreach (var (name, segment, _) in BadSegments.Where(c => c.Expected != NotFound))
                {
                    // A query string reaches Bastion as sent (the server decodes only the path), so even a NUL gets Bastion's answer.
                    failures.Add(await CheckAnswerAsync(route, $"{route.Template}?after={segment}", segment, BadRequest, $"{route.Method} {route.Template}?after= {name}"));
                    cases++;
                }
            }
        }

        output.WriteLine($"{cases} cases");
        foreach (var failure in failures.OfType<string>())
        {
            output.WriteLine("FAILED " + failure);
        }

        Assert.Empty(failures.OfType<string>());
        Assert.True(cases > 30, $"only {cases} cases ran");
    }

    /// <summary>Sends <paramref name="path"/> exactly as written; returns what is wrong with the answer, or null.</summary>
    private async Task<string?> CheckAnswerAsync(AdminRoute route, string path, string sent, int expected, string because)
    {
        var silo = fixture.Silo;
        var uri = new Uri(silo.Http.BaseAddress + path.TrimStart('/'), new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        using var request = TestSilo.Request(new HttpMethod(route.Method), "/", silo.AdminKey, route.Body);
        request.RequestUri = uri;
        using var response = await silo.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var status = (int)response.StatusCode;
        output.WriteLine($"{because}: {status}");
        if (status != Math.Abs(expected))
        {
            return $"{because}: {status}, expected {Math.Abs(expected)}. {body}";
        }

        if (response.Headers.Any(header => header.Value.Any(v => v.Contains("injected", StringComparison.Ordinal))))
        {
            return $"{because}: a response header carries the input";
        }

        if (expected == ListOfUsers)
        {
            return null;
        }

        if (expected == RefusedByServer)
        {
            return body.Length == 0 ? null : $"{because}: the server's own refusal has a body. {body}";
        }

        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            return $"{because}: content type {response.Content.Headers.ContentType}";
        }

        using var problem = JsonDocument.Parse(body);
        var type = "urn:bastion:problem:" + expected switch
        {
            BadRequest => "invalid-request",
            NotFound => "not-found",
            _ => "method-not-allowed",
        };
        if (problem.RootElement.GetProperty("type").GetString() != type
            || !problem.RootElement.TryGetProperty("traceId", out var traceId) || string.IsNullOrEmpty(traceId.GetString()))
        {
            return $"{because}: not a {type} problem with a traceId. {body}";
        }

        if (InternalMarkers.FirstOrDefault(marker => body.Contains(marker, StringComparison.Ordinal)) is { } leaked)
        {
            return $"{because}: the body shows '{leaked}'. {body}";
        }

        // Raw in the body, or inside any JSON string once its escapes are undone.
        var texts = StringsIn(problem.RootElement).Append(body).ToList();
        return new[] { sent, Uri.UnescapeDataString(sent) }.Where(IsDistinctive)
            .Any(echo => texts.Any(text => text.Contains(echo, StringComparison.Ordinal)))
            ? $"{because}: the body echoes the input. {body}"
            : null;
    }

    private static IEnumerable<string> StringsIn(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => [element.GetString()!],
        JsonValueKind.Object => element.EnumerateObject().SelectMany(property => StringsIn(property.Value).Prepend(property.Name)),
        JsonValueKind.Array => element.EnumerateArray().SelectMany(StringsIn),
        _ => [],
    };

    /// <summary>Long enough, and not only digits, that finding it in a fixed message would not be chance.</summary>
    private static bool IsDistinctive(string value) => value.Length >= 3 && !value.All(c => char.IsAsciiDigit(c) || c is '.' or '-' or '+');

    /// <summary>One admin route: its method and template, a valid body, its paging query parameters, what an empty path parameter answers.</summary>
    private sealed record AdminRoute(string Method, string Template, object? Body = null, string[]? Query = null, Dictionary<string, int>? Empty = null);
}
