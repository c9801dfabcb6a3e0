using Bastion.Security;
using Bastion.Users;

namespace Bastion.Api;

/// <summary>Records every administrative request, allowed or not, in the audit log and the log stream.</summary>
public static partial class AuditFilter
{
    /// <summary>Audits the route as <paramref name="action"/>; the target is the <c>{id}</c> route value, pseudonymized.</summary>
    public static TBuilder Audited<TBuilder>(this TBuilder builder, string action)
        where TBuilder : IEndpointConventionBuilder => builder.AddEndpointFilter(async (context, next) =>
        {
            var result = await next(context);
            var http = context.HttpContext;
            var services = http.RequestServices;
            var target = http.GetRouteValue("id") is string id ? services.GetRequiredService<Pseudonymizer>().Pseudonymize(id) : null;
            var status = result is IStatusCodeHttpResult { StatusCode: { } code } ? code : http.Response.StatusCode;
            var actor = http.Caller().Caller.Pseudonym;
            LogAudit(services.GetRequiredService<ILoggerFactory>().CreateLogger("Bastion.Audit"), actor, action, target, status);
            await services.GetRequiredService<IGrainFactory>().GetGrain<IAuditLogGrain>(IAuditLogGrain.Key)
                .AppendAsync(new AuditEvent(services.GetRequiredService<TimeProvider>().GetUtcNow(), actor, action, target, status));
            return result;
        });

    [LoggerMessage(Level = LogLevel.Warning, Message = "AUDIT {Actor} {Action} {Target}: {Status}")]
    private static partial void LogAudit(ILogger logger, string actor, string action, string? target, int status);
}
