using System.ComponentModel.DataAnnotations;

namespace Bastion.Hosting;

/// <summary>
/// Where this silo's telemetry can be read besides the admin <c>GET /metrics</c> of API silos (docs/metrics.md).
/// OTLP export is configured with the standard <c>OTEL_EXPORTER_OTLP_*</c> variables, not here.
/// </summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Bastion:Telemetry";

    /// <summary>
    /// A plain-HTTP port that serves only <c>GET /metrics</c>, without credentials, on any silo role (worker-only
    /// silos have no admin API to scrape). Unset: no such port; 0 picks a free one. Expose it to the scraper only.
    /// </summary>
    [Range(0, 65535)]
    public int? MetricsPort { get; set; }

    /// <summary>The address the metrics port listens on; loopback unless configured.</summary>
    [Required]
    public string MetricsAddress { get; set; } = "127.0.0.1";
}
