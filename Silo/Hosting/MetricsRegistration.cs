using Bastion.Diagnostics;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Bastion.Hosting;

public static class MetricsRegistration
{
    // Any other method is one label value, so a client cannot mint series.
    private static readonly HashSet<string> KnownMethods = new(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"], StringComparer.Ordinal);

    /// <summary>The <c>Bastion</c> meter and the exporter that keeps its series for <c>GET /metrics</c>.</summary>
    public static IServiceCollection AddBastionMetrics(this IServiceCollection services)
    {
        services.AddMetrics();
        services.TryAddSingleton<BastionMetrics>();
        services.TryAddSingleton<PrometheusExporter>();
        return services;
    }

    /// <summary>
    /// Starts the exporter (it counts only what happens after it starts) and counts every request by its route
    /// template, method and final status. Runs inside the exception handler, so a request that throws is
    /// counted with the status the handler will give it.
    /// </summary>
    public static WebApplication UseBastionMetrics(this WebApplication app, Func<Exception, int> statusForException)
    {
        app.Services.GetRequiredService<PrometheusExporter>();
        var metrics = app.Services.GetRequiredService<BastionMetrics>();
        app.Use(async (context, next) =>
        {
            var status = 0;
            try
            {
                await next(context);
                status = context.Response.StatusCode;
            }
            catch (Exception exception)
            {
                status = statusForException(exception);
                throw;
            }
            finally
            {
                // The template, never the path: a path can name a user (/admin/users/alice).
                var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
                metrics.RecordRequest(route, KnownMethods.Contains(context.Request.Method) ? context.Request.Method : "OTHER", status);
            }
        });
        return app;
    }
}
