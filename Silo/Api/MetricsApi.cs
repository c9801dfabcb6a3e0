using Bastion.Access;
using Bastion.Diagnostics;

namespace Bastion.Api;

/// <summary><c>GET /metrics</c>: this silo's metrics in the Prometheus text format, for admins (docs/metrics.md).</summary>
public static class MetricsApi
{
    public static IEndpointRouteBuilder MapMetricsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/metrics", (PrometheusExporter exporter) => TypedResults.Text(exporter.Render(), PrometheusExporter.ContentType))
            .RequirePermission(Permission.ReadMetrics);
        return routes;
    }
}
