using Bastion.Api;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Api;

/// <summary>Deny by default: every route declares the permission it needs, or that it is open.</summary>
[Collection(SiloCollection.Name)]
public sealed class RouteDeclarationTests(SiloFixture fixture)
{
    [Fact]
    public void EveryRoute_DeclaresAPermissionOrThatItIsOpen()
    {
        var endpoints = fixture.Silo.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();

        Assert.NotEmpty(endpoints);
        var undeclared = endpoints
            .Where(e => e.Metadata.GetMetadata<RequiredPermission>() is null && e.Metadata.GetMetadata<AnonymousRoute>() is null)
            .Select(e => e.RoutePattern.RawText)
            .ToList();
        Assert.Empty(undeclared);
    }
}
