using System.Diagnostics;
using System.Net;
using Bastion.Diagnostics;
using Bastion.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>OTLP export is on exactly when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (docs/metrics.md).</summary>
public sealed class TelemetryOtlpTests
{
    [Fact]
    public async Task AddBastionTelemetry_WithOtlpEndpoint_ExportsSpansThere()
    {
        var port = FreePort.OrPick(0);
        using var collector = new HttpListener();
        collector.Prefixes.Add($"http://127.0.0.1:{port}/");
        collector.Start();
        var received = collector.GetContextAsync();

        await using var app = Build(new()
        {
            [TelemetryRegistration.OtlpEndpointKey] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        });
        var traceId = RecordSpan(app);

        var request = await received.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("/v1/traces", request.Request.Url!.AbsolutePath);
        using var body = new MemoryStream();
        await request.Request.InputStream.CopyToAsync(body);
        request.Response.StatusCode = 200;
        request.Response.Close();
        // The protobuf request carries the span's 16-byte trace id.
        var id = Convert.FromHexString(traceId.ToHexString());
        Assert.True(body.ToArray().AsSpan().IndexOf(id) >= 0);
    }

    private static WebApplication Build(Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddBastionTelemetry(new NodeOptions());
        return builder.Build();
    }

    private static ActivityTraceId RecordSpan(WebApplication app)
    {
        var tracing = app.Services.GetRequiredService<TracerProvider>();
        using var source = new ActivitySource(InferenceTracing.SourceName);
        ActivityTraceId traceId;
        // A root server span: what starts a trace (RequestRootedSampler).
        using (var span = source.StartActivity("POST /v1/completions", ActivityKind.Server))
        {
            Assert.NotNull(span);
            traceId = span.TraceId;
        }

        tracing.ForceFlush();
        return traceId;
    }
}
