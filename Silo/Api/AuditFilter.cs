using System.Globalization;
using Bastion.Audit;
using Bastion.Security;

namespace Bastion.Api;

/// <summary>Records every administrative request, allowed or not, in the audit trail and the log stream.</summary>
public static partial class AuditFilter
{
    /// <summary>Audits the route as <paramref name="action"/>; the target is the <c>{id}</c> route value, pseudonymized, or the caller.</summary>
    /// <remarks>A request that fails with an exception is audited too, with status 500, before the exception goes on.</remarks>
    public static TBuilder Audited<TBuilder>(this TBuilder builder, string action, AuditTarget target = AuditTarget.RouteId)
        where TBuilder : IEndpointConventionBuilder => builder.AddEndpointFilter(async (context, next) =>
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

    private static async Task AppendAsync(HttpContext http, string action, AuditTarget target, int status)
    {
        var services = http.RequestServices;
        var actor = http.Caller().Caller.Pseudonym;
        var targetPseudonym = target == AuditTarget.Caller
            ? actor
            : http.GetRouteValue("id") is string id ? services.GetRequiredService<Pseudonymizer>().Pseudonymize(id) : null;
        LogAudit(services.GetRequiredService<ILoggerFactory>().CreateLogger("Bastion.Audit"), actor, action, targetPseudonym, status);
        await services.GetRequiredService<IAuditTrail>().RecordAsync(new AuditRecord(
            services.GetRequiredService<TimeProvider>().GetUtcNow(), action, actor, targetPseudonym, status.ToString(CultureInfo.InvariantCulture)));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "AUDIT {Actor} {Action} {Target}: {Status}")]
    private static partial void LogAudit(ILogger logger, string actor, string action, string? target, int status);
}

/// <summary>Whom an audited route acts on.</summary>
public enum AuditTarget
{
    /// <summary>The user named by the <c>{id}</c> route value (pseudonymized), or no one when the route has none.</summary>
    RouteId = 0,

    /// <summary>The caller themself (<c>/v1/me</c>).</summary>
    Caller = 1,
}
