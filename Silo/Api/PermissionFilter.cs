using Bastion.Access;
using Bastion.Users;

namespace Bastion.Api;

/// <summary>The permission a route requires, as endpoint metadata (a test walks every route for it).</summary>
/// <param name="Permission">The permission.</param>
public sealed record RequiredPermission(Permission Permission);

/// <summary>Marks a route as open to anyone (health probes, the token exchange that checks its own key).</summary>
public sealed record AnonymousRoute;

/// <summary>The authenticated and authorized caller of the current request.</summary>
/// <param name="Caller">Who the caller is.</param>
/// <param name="Decision">What their grain decided.</param>
public sealed record CallerFeature(AuthenticatedCaller Caller, AccessDecision Decision);

public static class PermissionFilter
{
    /// <summary>
    /// Requires <paramref name="permission"/>: the edge authenticates the bearer credential, then the
    /// caller's user grain decides. Either failing ends the request before the handler runs.
    /// </summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, Permission permission)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.WithMetadata(new RequiredPermission(permission));
        return builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var authenticator = http.RequestServices.GetRequiredService<CallerAuthenticator>();
            if (await authenticator.AuthenticateAsync(http) is not { } caller)
            {
                return Problems.Unauthorized();
            }

            var grains = http.RequestServices.GetRequiredService<IGrainFactory>();
            var decision = await grains.GetGrain<IUserGrain>(caller.Pseudonym).AuthorizeAsync(caller.Credential, permission);
            if (!decision.IsAllowed)
            {
                if (decision.Reason != DenialReason.Forbidden)
                {
                    return Problems.Unauthorized();
                }

                // Someone authenticated tried an admin change their roles do not allow: that attempt is a security event.
                if (http.GetEndpoint()?.Metadata.GetMetadata<AuditedRoute>() is { } audited)
                {
                    await AuditFilter.RecordRefusalAsync(http, audited, caller.Pseudonym);
                }

                return Problems.Forbidden();
            }

            http.Features.Set(new CallerFeature(caller, decision));
            return await next(context);
        });
    }

    /// <summary>Declares a route open to anyone.</summary>
    public static TBuilder AllowAnonymousCaller<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new AnonymousRoute());

    /// <summary>The caller the permission filter admitted.</summary>
    public static CallerFeature Caller(this HttpContext context) =>
        context.Features.Get<CallerFeature>() ?? throw new InvalidOperationException("The route declares no permission.");
}
