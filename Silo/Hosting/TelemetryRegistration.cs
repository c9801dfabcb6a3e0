using Bastion.Diagnostics;
using Bastion.Security;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.Metrics;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Orleans.Diagnostics;

namespace Bastion.Hosting;

/// <summary>
/// OpenTelemetry for a silo (docs/metrics.md): traces of HTTP requests, grain calls, PostgreSQL commands and the batching
/// engine; the <c>Bastion</c> meter, ASP.NET Core and runtime metrics, scraped as Prometheus text; logs. Everything
/// also goes to an OTLP collector when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set.
/// </summary>
public static class TelemetryRegistration
{
    /// <summary>The standard variable (or configuration key) that turns OTLP export on, for traces, metrics and logs.</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The service name on every span, metric and log record, unless <c>OTEL_SERVICE_NAME</c> says otherwise.</summary>
    public const string ServiceName = "bastion";

    // Any other method is one label value, so a client cannot mint series.
    private static readonly HashSet<string> KnownMethods = new(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"], StringComparer.Ordinal);

    /// <summary>The tracer, meter and logger providers, their instrumentation and exporters, and the <c>Bastion</c> meter.</summary>
    public static WebApplicationBuilder AddBastionTelemetry(this WebApplicationBuilder builder, NodeOptions node)
    {
        // The SDK's own environment detector reads OTEL_SERVICE_NAME; a name set here would override it.
        var namedByEnvironment = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_SERVICE_NAME"]);
        var options = builder.Configuration.BindValidated<TelemetryOptions>(TelemetryOptions.SectionName);
        builder.Services.AddSingleton(new MetricsEndpoint(options.MetricsPort is { } port ? FreePort.OrPick(port) : null, options.MetricsAddress));

        // Local scope: only the meter this silo's own meter factory made. Silos of one test process each have a
        // "Bastion" meter, and each silo's /metrics shows its own.
        builder.Services.AddMetrics(metrics => metrics.EnableMetrics(BastionMetrics.MeterName, instrumentName: null, listenerName: null, MeterScope.Local));
        builder.Services.TryAddSingleton<BastionMetrics>();

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource =>
            {
                if (!namedByEnvironment)
                {
                    resource.AddService(ServiceName, serviceVersion: typeof(TelemetryRegistration).Assembly.GetName().Version?.ToString());
                }

                resource.AddAttributes([new("bastion.node.roles", node.Roles.Length == 0 ? "api,worker" : string.Join(',', node.Roles))]);
            })
            .WithTracing(tracing => tracing
                // Replaces OTEL_TRACES_SAMPLER: background cluster chatter starts no traces (docs/metrics.md).
                .SetSampler<RequestRootedSampler>()
                // First, so that no exporter sees what it removes.
                .AddProcessor<TelemetryRedaction>()
                .AddSource(
                    InferenceTracing.SourceName,
                    ActivitySources.ApplicationGrainActivitySourceName,
                    ActivitySources.RuntimeActivitySourceName,
                    ActivitySources.StorageActivitySourceName)
                .AddAspNetCoreInstrumentation(aspNetCore =>
                {
                    // Probes and scrapes would be most of the traces and tell nothing.
                    aspNetCore.Filter = context => !IsProbeOrScrape(context.Request.Path);
                    // The raw path can name a user (/admin/users/alice); the route template is kept as http.route.
                    aspNetCore.EnrichWithHttpRequest = (activity, _) => activity.SetTag("url.path", null).SetTag("url.query", null);
                })
                .AddNpgsql())
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                // No cache: a scrape shows what happened up to it.
                .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0))
            .WithLogging();
        if (!string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointKey]))
        {
            // Reads the other OTEL_EXPORTER_OTLP_* settings (protocol, headers, per-signal endpoints) itself.
            telemetry.UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>
    /// Counts every request by its route template, method and final status (<c>bastion_http_requests</c>), and serves
    /// the scrape-only metrics port when one is configured. Runs inside the exception handler, so a request that
    /// throws is counted with the status the handler will give it.
    /// </summary>
    public static WebApplication UseBastionTelemetry(this WebApplication app, Func<Exception, int> statusForException)
    {
        var metrics = app.Services.GetRequiredService<BastionMetrics>();
        if (app.Services.GetService<IKeyProvider>() is KeyVaultKeyProvider keyVault)
        {
            metrics.SetKeyProviderAge(() => keyVault.SinceLastRefresh);
        }

        if (app.Services.GetRequiredService<MetricsEndpoint>().Port is { } port)
        {
            // Nothing but the scrape answers on the metrics port, and the scrape answers nowhere else without credentials.
            app.MapWhen(context => context.Connection.LocalPort == port, scrape =>
            {
                scrape.UseOpenTelemetryPrometheusScrapingEndpoint(context => HttpMethods.IsGet(context.Request.Method) && context.Request.Path == "/metrics");
                scrape.Run(context =>
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                });
            });
        }

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

    private static bool IsProbeOrScrape(PathString path) =>
        path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") || path.StartsWithSegments("/metrics");
}

/// <summary>The scrape-only metrics port (<see cref="TelemetryOptions.MetricsPort"/>) once chosen; null when there is none.</summary>
/// <param name="Port">The port.</param>
/// <param name="Address">The address it listens on.</param>
public sealed record MetricsEndpoint(int? Port, string Address);
