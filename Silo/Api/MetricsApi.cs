using Bastion.Access;

namespace Bastion.Api;

/// <summary>
/// <c>GET /metrics</c>: this silo's metrics in the Prometheus text format, from the OpenTelemetry Prometheus exporter,
/// for admins (docs/metrics.md). The scrape-only metrics port serves the same without credentials.
/// </summary>
public static class MetricsApi
{
    public static IEndpointRouteBuilder MapMetricsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPrometheusScrapingEndpoint("/metrics").RequirePermission(Permission.ReadMetrics);
        return routes;
    }
}
