using System.Net;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// Every route × every role × the caller's own resource and another user's: a route answers only when the
/// caller's role is one the table below allows, and 403 otherwise. The table is the specification, written by
/// hand from the README's route list; it deliberately does not read route metadata or <c>RolePermissions</c>, so
/// a route that declares the wrong permission, or a role that grants too much, turns a cell red. A route mapped
/// but missing from the table (or listed but not mapped) fails too, so a new route is specified the day it lands.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class AuthorizationMatrixTests(SiloFixture fixture, ITestOutputHelper output)
{
    private const string User = "user";
    private const string DataScientist = "data-scientist";
    private const string Service = "service";
    private const string Admin = "admin";
    private static readonly string[] Everyone = [User, DataScientist, Service, Admin];
    private static readonly string[] AdminsOnly = [Admin];

    /// <summary>(method, route, roles allowed): the access specification.</summary>
    private static readonly (string Method, string Route, string[] Allowed)[] Specification =
    [
        ("GET", "/v1/models", Everyone),
        ("GET", "/v1/models/{id}", Everyone),
        ("POST", "/v1/completions", Everyone),
        ("POST", "/v1/chat/completions", Everyone),
        ("GET", "/v1/me", Everyone),
        ("GET", "/v1/me/usage", Everyone),
        ("DELETE", "/v1/me", Everyone),
        ("GET", "/metrics", AdminsOnly),
        ("GET", "/admin/users", AdminsOnly),
        ("POST", "/admin/users", AdminsOnly),
        ("GET", "/admin/users/{id}", AdminsOnly),
        ("DELETE", "/admin/users/{id}", AdminsOnly),
        ("PUT", "/admin/users/{id}/roles", AdminsOnly),
        ("PUT", "/admin/users/{id}/limits", AdminsOnly),
        ("POST", "/admin/users/{id}/api-keys", AdminsOnly),
        ("DELETE", "/admin/users/{id}/api-keys/{keyId}", AdminsOnly),
        ("POST", "/admin/users/{id}/suspend", AdminsOnly),
        ("POST", "/admin/users/{id}/resume", AdminsOnly),
        ("POST", "/admin/users/{id}/revoke-tokens", AdminsOnly),
        ("GET", "/admin/audit", AdminsOnly),
        ("GET", "/admin/emergency", AdminsOnly),
        ("PUT", "/admin/emergency", AdminsOnly),
        ("GET", "/admin/keys", AdminsOnly),
        ("POST", "/admin/keys/rewrap", AdminsOnly),
        ("GET", "/admin/keys/rewrap", AdminsOnly),
        ("POST", "/admin/keys/kek/{version}/retire", AdminsOnly),
    ];

    /// <summary>The only routes open without a credential.</summary>
    private static readonly (string Method, string Route)[] Open =
    [
        ("POST", "/v1/auth/token"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        // Development only (the test silos run as Development): the OpenAPI document, which holds no secret.
        ("GET", "/openapi/v1.json"),
    ];

    [Fact]
    public void MappedRoutes_AreExactlyTheSpecifiedOnes()
    {
        var mapped = fixture.Silo.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => $"{e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods.Single() ?? "GET"} {e.RoutePattern.RawText!.TrimEnd('/')}")
            .Order(StringComparer.Ordinal);
        var specified = Specification.Select(row => $"{row.Method} {row.Route}").Concat(Open.Select(row => $"{row.Method} {row.Route}"))
            .Order(StringComparer.Ordinal);

        Assert.Equal(specified, mapped);
    }

    [Fact]
    public async Task EveryRouteRoleAndOwner_IsReachableExactlyWhenTheSpecificationAllowsTheRole()
    {
        var cells = 0;
        foreach (var (method, pattern, allowedRoles) in Specification)
        {
            foreach (var role in Everyone)
            {
                foreach (var own in new[] { true, false })
                {
                    var (callerId, callerKey) = await NewUserAsync(role);
                    var (targetId, targetKey) = await NewUserAsync(User);
                    var subject = own ? callerId : targetId;
                    var path = pattern
                        .Replace("{id}", subject, StringComparison.Ordinal)
                        .Replace("{keyId}", (own ? callerKey : targetKey).Split('_')[1], StringComparison.Ordinal)
                        .Replace("{version}", "999", StringComparison.Ordinal);

                    using var response = await fixture.Silo.Http.SendAsync(TestSilo.Request(new HttpMethod(method), path, callerKey, Body(pattern, method)));

                    var allowed = allowedRoles.Contains(role);
                    output.WriteLine($"{method} {pattern} as {role} ({(own ? "own" : "other's")}): {(int)response.StatusCode}");
                    if (allowed)
                    {
                        Assert.True(response.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden),
                            $"{method} {pattern} as {role} was refused ({response.StatusCode}) though the specification allows it");
                    }
                    else
                    {
                        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{method} {pattern} as {role} answered {response.StatusCode}, not 403");
                    }

                    cells++;
                }
            }
        }

        output.WriteLine($"{cells} cells");
        Assert.Equal(Specification.Length * Everyone.Length * 2, cells);
    }

    private async Task<(string Id, string ApiKey)> NewUserAsync(string role)
    {
        var id = $"matrix-{role}-{Guid.NewGuid():N}";
        return (id, await fixture.Silo.CreateUserWithKeyAsync(id, role));
    }

    /// <summary>A valid body for each route that takes one, so that only authorization can refuse it.</summary>
    private static object? Body(string pattern, string method) => (method, pattern) switch
    {
        ("POST", "/v1/completions") => new { model = "bastion-tiny-gpt2", prompt = "x", max_tokens = 1 },
        ("POST", "/v1/chat/completions") => new { model = "bastion-tiny-gpt2", messages = new[] { new { role = "user", content = "x" } }, max_tokens = 1 },
        ("POST", "/admin/users") => new { id = "matrix-new-" + Guid.NewGuid().ToString("N"), roles = new[] { User } },
        ("PUT", "/admin/users/{id}/roles") => new { roles = new[] { User } },
        ("PUT", "/admin/users/{id}/limits") => new { concurrency = 5 },
        ("POST", "/admin/users/{id}/api-keys") => new { label = "matrix" },
        _ => null,
    };
}
