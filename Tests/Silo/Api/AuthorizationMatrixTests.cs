using System.Net;
using Bastion.Access;
using Bastion.Api;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// Every route × every role × the caller's own resource and another user's: a route answers only
/// when one of the caller's roles grants the permission the route declares, and 403 otherwise.
/// The routes come from the running silo, so a new route is in the matrix the day it is mapped.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class AuthorizationMatrixTests(SiloFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task EveryRouteRoleAndOwner_IsReachableExactlyWhenARoleGrantsItsPermission()
    {
        var routes = fixture.Silo.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<RequiredPermission>() is not null)
            .Select(e => (Pattern: e.RoutePattern.RawText!, Method: e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Single(), e.Metadata.GetMetadata<RequiredPermission>()!.Permission))
            .ToList();
        Assert.True(routes.Count >= 15, $"only {routes.Count} routes declare a permission");

        var cells = 0;
        foreach (var (pattern, method, permission) in routes)
        {
            foreach (var role in Roles.All)
            {
                foreach (var own in new[] { true, false })
                {
                    var (callerId, callerKey) = await NewUserAsync(role);
                    var (targetId, targetKey) = await NewUserAsync(Roles.User);
                    var subject = own ? callerId : targetId;
                    var path = pattern
                        .Replace("{id}", subject, StringComparison.Ordinal)
                        .Replace("{keyId}", (own ? callerKey : targetKey).Split('_')[1], StringComparison.Ordinal);

                    using var response = await fixture.Silo.Http.SendAsync(TestSilo.Request(new HttpMethod(method), path, callerKey, Body(pattern, method)));

                    var allowed = RolePermissions.Allows([role], permission);
                    output.WriteLine($"{method} {pattern} as {role} ({(own ? "own" : "other's")}): {(int)response.StatusCode}");
                    if (allowed)
                    {
                        Assert.True(response.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden),
                            $"{method} {pattern} as {role} was refused ({response.StatusCode}) though {permission} is granted");
                    }
                    else
                    {
                        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
                    }

                    cells++;
                }
            }
        }

        output.WriteLine($"{cells} cells");
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
        ("POST", "/admin/users") => new { id = "matrix-new-" + Guid.NewGuid().ToString("N"), roles = new[] { Roles.User } },
        ("PUT", "/admin/users/{id}/roles") => new { roles = new[] { Roles.User } },
        ("PUT", "/admin/users/{id}/limits") => new { concurrency = 5 },
        ("POST", "/admin/users/{id}/api-keys") => new { label = "matrix" },
        _ => null,
    };
}
