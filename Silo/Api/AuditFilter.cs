using System.Globalization;
using Bastion.Access;
using Bastion.Audit;
using Bastion.Security;

namespace Bastion.Api;

/// <summary>Records every administrative request, allowed or not, in the audit trail and the log stream.</summary>
public static partial class AuditFilter
{
    private const string DetailKey = "bastion.audit.detail";

    /// <summary>Audits the route as <paramref name="action"/>; the target is the <c>{id}</c> route value, pseudonymized, or the caller.</summary>
    /// <remarks>
    /// A request that fails with an exception is audited too, with status 500, before the exception goes on; one the
    /// permission filter refuses (403: an authenticated caller without the permission) is audited by that filter, from
    /// the <see cref="AuditedRoute"/> metadata this adds.
    /// </remarks>
    public static TBuilder Audited<TBuilder>(this TBuilder builder, string action, AuditTarget target = AuditTarget.RouteId)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new AuditedRoute(action, target)).AddEndpointFilter(async (context, next) =>
        {
            object? result;
            try
            {
                result = await next(context);
            }
            catch (Exception) when (!context.HttpContext.RequestAborted.IsCancellationRequested)
            {
                await AppendAsync(context.HttpContext, action, target, StatusCodes.Status500InternalServerError);
                throw;
            }

            // A handler's Results<…> union carries the status on the result it holds, not on itself.
            var outcome = result is INestedHttpResult nested ? nested.Result : result;
            var status = outcome is IStatusCodeHttpResult { StatusCode: { } code } ? code : context.HttpContext.Response.StatusCode;
            await AppendAsync(context.HttpContext, action, target, status);
            return result;
        });

    /// <summary>Adds a non-secret fact (e.g. the value a switch was set to) to the audit record of this request.</summary>
    public static void AddDetail(HttpContext http, string name, string value)
    {
        if (!http.Items.TryGetValue(DetailKey, out var existing) || existing is not Dictionary<string, string> detail)
        {
            http.Items[DetailKey] = detail = new Dictionary<string, string>(StringComparer.Ordinal);
        }

        detail[name] = value;
    }

    /// <summary>Refuses the route with 409 <c>changes-frozen</c> while the emergency switch freezes changes that grant access.</summary>
    public static TBuilder RefusedWhileFrozen<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new FrozenRoute()).AddEndpointFilter(async (context, next) =>
            (await context.HttpContext.RequestServices.GetRequiredService<EmergencySwitchboard>().GetAsync()).ChangesFrozen
                ? Problems.ChangesFrozen()
                : await next(context));

    /// <summary>Audits a request to an audited route that the permission filter refused (the handler never ran).</summary>
    public static Task RecordRefusalAsync(HttpContext http, AuditedRoute route, string callerPseudonym) =>
        AppendAsync(http, route.Action, route.Target, StatusCodes.Status403Forbidden, callerPseudonym);

    private static async Task AppendAsync(HttpContext http, string action, AuditTarget target, int status, string? callerPseudonym = null)
    {
        var services = http.RequestServices;
        var actor = callerPseudonym ?? http.Caller().Caller.Pseudonym;
        var targetPseudonym = target == AuditTarget.Caller
            ? actor
            : http.GetRouteValue("id") is string id ? services.GetRequiredService<Pseudonymizer>().Pseudonymize(id) : null;
        LogAudit(services.GetRequiredService<ILoggerFactory>().CreateLogger("Bastion.Audit"), actor, action, targetPseudonym, status);
        await services.GetRequiredService<IAuditTrail>().RecordAsync(new AuditRecord(
            services.GetRequiredService<TimeProvider>().GetUtcNow(), action, actor, targetPseudonym, status.ToString(CultureInfo.InvariantCulture),
            http.Items.TryGetValue(DetailKey, out var detail) ? detail as IReadOnlyDictionary<string, string> : null));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "AUDIT {Actor} {Action} {Target}: {Status}")]
    private static partial void LogAudit(ILogger logger, string actor, string action, string? target, int status);
}

/// <summary>Endpoint metadata of an audited route: what it is recorded as.</summary>
/// <param name="Action">The audit action.</param>
/// <param name="Target">Whom it acts on.</param>
public sealed record AuditedRoute(string Action, AuditTarget Target);

/// <summary>Marks a route refused with 409 <c>changes-frozen</c> while changes are frozen (the OpenAPI document reads it).</summary>
public sealed record FrozenRoute;

/// <summary>Whom an audited route acts on.</summary>
public enum AuditTarget
{
    /// <summary>The user named by the <c>{id}</c> route value (pseudonymized), or no one when the route has none.</summary>
    RouteId = 0,

    /// <summary>The caller themself (<c>/v1/me</c>).</summary>
    Caller = 1,
}
