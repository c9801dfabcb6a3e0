using System.Net;
using Bastion.Api;
using Bastion.Audit;
using Bastion.Security;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection.Extensions;
using System.Threading.RateLimiting;

namespace Bastion.Hosting;

public static class HttpRegistration
{
    /// <summary>
    /// The HTTPS edge: Kestrel on the configured address, problem+json for every error, the key
    /// provider and credential handling, health checks, and the bootstrap admin on API silos.
    /// </summary>
    public static WebApplicationBuilder AddBastionHttp(this WebApplicationBuilder builder, NodeOptions node, DevelopmentPaths paths)
    {
        var http = builder.Configuration.BindValidated<HttpOptions>(HttpOptions.SectionName);
        var (certificate, caFile) = LoadCertificate(http, builder.Environment.IsDevelopment(), paths);
        builder.AddBastionTelemetry(node);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = http.MaxRequestBodyBytes;
            kestrel.Listen(IPAddress.Parse(http.Address), http.Port, listen => listen.UseHttps(certificate));
            if (kestrel.ApplicationServices.GetRequiredService<MetricsEndpoint>() is { Port: { } metricsPort } metrics)
            {
                // Plain HTTP for the scraper on the internal network: it serves only GET /metrics (docs/metrics.md).
                kestrel.Listen(IPAddress.Parse(metrics.Address), metricsPort);
            }
        });
        builder.Services.AddSingleton(new EdgeEndpoints(caFile));

        builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            if (context.ProblemDetails.Type is null || !context.ProblemDetails.Type.StartsWith(Problems.TypePrefix, StringComparison.Ordinal))
            {
                context.ProblemDetails.Type = Problems.TypeFor(status);
            }

            if (status == StatusCodes.Status503ServiceUnavailable && KeysUnavailableException.IsIn(context.Exception))
            {
                // Fail closed: nothing that needs a key is served without one (see docs/key-vault.md).
                context.ProblemDetails.Type = Problems.TypePrefix + "keys-unavailable";
                context.ProblemDetails.Title = "Keys are unavailable.";
                context.ProblemDetails.Detail = "The service cannot currently read its keys; retry later.";
                context.HttpContext.Response.Headers.RetryAfter = "30";
            }
            else if (status == StatusCodes.Status503ServiceUnavailable && context.Exception is not null)
            {
                context.ProblemDetails.Title = "The service is unavailable.";
                context.ProblemDetails.Detail = "A part of the cluster is unavailable or changing; retry shortly.";
                context.HttpContext.Response.Headers.RetryAfter = "1";
            }
            else if (status >= 500)
            {
                // Whatever failed inside stays inside: the trace id is what an operator needs.
                context.ProblemDetails.Title = "The request failed.";
                context.ProblemDetails.Detail = "An internal error occurred. Quote the traceId when reporting it.";
            }

            context.ProblemDetails.Extensions.Remove("exception");
            context.ProblemDetails.Extensions["traceId"] = Problems.TraceId(context.HttpContext);
            // The field at fault travels in OpenAI's error.param only, not twice.
            var param = context.ProblemDetails.Extensions.TryGetValue(Problems.ParamExtension, out var named) ? named as string : null;
            context.ProblemDetails.Extensions.Remove(Problems.ParamExtension);
            context.ProblemDetails.Extensions["error"] = Problems.OpenAiError(status, context.ProblemDetails.Type, context.ProblemDetails.Detail ?? context.ProblemDetails.Title, param);
        });
        var health = builder.Services.AddHealthChecks()
            .AddCheck<ClusterHealthCheck>("cluster", tags: ["ready"])
            .AddCheck<DatabaseHealthCheck>("database", tags: ["ready"]);
        if (node.HasRole(NodeOptions.WorkerRole))
        {
            health.AddCheck<ModelHealthCheck>("models", tags: ["ready"]);
        }

        // Try: a test may bring its own, on a clock of its own.
        builder.Services.TryAddSingleton<ReadinessReports>();

        if (!node.HasRole(NodeOptions.ApiRole))
        {
            return builder;
        }

        builder.Services.AddRateLimiter(options =>
        {
            // Guessing API keys costs an attacker one request per guess: bound the guesses per address.
            options.AddPolicy(AuthApi.TokenExchangePolicy, context => RateLimitPartition.GetFixedWindowLimiter(
                context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = http.TokenExchangesPerMinutePerAddress, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
            options.OnRejected = async (context, cancellationToken) =>
            {
                context.HttpContext.RequestServices.GetRequiredService<Bastion.Diagnostics.BastionMetrics>().RecordRateLimitRefusal("token-exchange");
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? (long)Math.Ceiling(wait.TotalSeconds) : 60;
                context.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await Problems.RateLimited("Too many token requests from this address; retry after the Retry-After interval.").ExecuteAsync(context.HttpContext);
            };
        });

        builder.Services.AddOptions<TokenOptions>().BindConfiguration(TokenOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<BootstrapOptions>().BindConfiguration(BootstrapOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<Pseudonymizer>();
        builder.Services.AddSingleton<ClientNetworks>();
        builder.Services.AddSingleton<ClusterModels>();
        // The API's types as the framework itself describes them (the OpenAPI schemas): ApiJsonContext's snake_case
        // contracts. No naming policy of its own, which would also rename problem extensions (traceId).
        builder.Services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default));
        if (builder.Environment.IsDevelopment())
        {
            builder.Services.AddBastionOpenApi();
        }
        builder.Services.AddSingleton<ApiKeys>();
        builder.Services.AddSingleton<AccessTokens>();
        builder.Services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.SectionName).ValidateOnStart()
            .Validate(options => options.ExternalIssuers.All(issuer => System.ComponentModel.DataAnnotations.Validator.TryValidateObject(issuer, new(issuer), null, true)
                    && issuer.EffectiveTypes.All(type => !string.IsNullOrWhiteSpace(type))),
                $"{AuthOptions.SectionName}:ExternalIssuers: every issuer needs Name (a-z, 0-9, '-'), Issuer, Audience and JwksFile; " +
                "MaxLifetime must lie between 00:00:01 and 1.00:00:00, and AllowedTypes may hold only non-empty values.");
        builder.Services.AddSingleton<ExternalTokens>();
        builder.Services.AddSingleton<CallerAuthenticator>();
        builder.Services.AddSingleton(sp => ActivatorUtilities.CreateInstance<AuthenticationFailureLimiter>(sp, http));
        // Registered after the audit trail (AddBastionSilo), so it stops first and its last summary is written.
        builder.Services.AddSingleton<AuthenticationFailureSummary>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuthenticationFailureSummary>());
        builder.Services.AddSingleton(sp => new BootstrapAdmin(
            sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<Pseudonymizer>(), sp.GetRequiredService<ApiKeys>(),
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<BootstrapOptions>>(), TimeProvider.System,
            sp.GetRequiredService<ILogger<BootstrapAdmin>>(), paths.AdminKey));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BootstrapAdmin>());
        return builder;
    }

    public static WebApplication MapBastionHttp(this WebApplication app, NodeOptions node)
    {
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            StatusCodeSelector = StatusFor,
            SuppressDiagnosticsCallback = context => context.Exception is BadHttpRequestException,
        });
        app.UseBastionTelemetry(StatusFor);
        app.UseStatusCodePages();
        app.MapHealthChecks("/healthz", new() { Predicate = _ => false }).AllowAnonymousCaller();
        app.MapGet("/readyz", ReadinessWriter.WriteAsync).AllowAnonymousCaller();
        if (node.HasRole(NodeOptions.ApiRole))
        {
            app.Use(app.Services.GetRequiredService<AuthenticationFailureLimiter>().InvokeAsync);
            app.UseRateLimiter();
            app.MapAuthApi();
            app.MapModelsApi();
            app.MapCompletionsApi();
            app.MapMeApi();
            app.MapAdminApi();
            app.MapLimitsApi();
            app.MapKeysApi();
            app.MapJwksApi();
            app.MapMetricsApi();
            if (app.Environment.IsDevelopment())
            {
                app.MapBastionOpenApi();
            }
        }

        app.Lifetime.ApplicationStarted.Register(() => PublishConnectionDetails(app, node));
        return app;
    }

    private static int StatusFor(Exception exception) => exception switch
    {
        BadHttpRequestException bad => bad.StatusCode,
        _ when KeysUnavailableException.IsIn(exception) => StatusCodes.Status503ServiceUnavailable,
        // A silo died or the cluster is reconfiguring: the request may succeed when retried.
        SiloUnavailableException or OrleansMessageRejectionException or TimeoutException => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static (System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate, string CaFile) LoadCertificate(
        HttpOptions http, bool isDevelopment, DevelopmentPaths paths)
    {
        if (http.CertificateFile is { } certificateFile)
        {
            if (http.CertificateKeyFile is not { } keyFile)
            {
                throw new StartupException($"{HttpOptions.SectionName}:CertificateKeyFile must be set with {HttpOptions.SectionName}:CertificateFile.");
            }

            try
            {
                return (System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certificateFile, keyFile), certificateFile);
            }
            catch (Exception exception) when (exception is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
            {
                throw new StartupException($"{HttpOptions.SectionName}:CertificateFile or CertificateKeyFile cannot be loaded: {exception.Message}", exception);
            }
        }

        if (!isDevelopment)
        {
            throw new StartupException($"{HttpOptions.SectionName}:CertificateFile is not set. Outside Development Bastion serves HTTPS with a configured certificate.");
        }

        return DevelopmentCertificate.LoadOrCreate(paths.Tls, TimeProvider.System);
    }

    /// <summary>On API silos, the values a developer needs to call the node, one per line, for people and scripts.</summary>
    private static void PublishConnectionDetails(WebApplication app, NodeOptions node)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var edge = app.Services.GetRequiredService<EdgeEndpoints>();
        edge.Url = addresses.FirstOrDefault(address => address.StartsWith("https://", StringComparison.Ordinal));
        if (!node.HasRole(NodeOptions.ApiRole))
        {
            return;
        }

        var bootstrap = app.Services.GetRequiredService<BootstrapAdmin>();
        Console.Out.WriteLine($"BASTION_URL={edge.Url}");
        Console.Out.WriteLine($"BASTION_CA_FILE={edge.CaFile}");
        if (File.Exists(bootstrap.KeyFile))
        {
            Console.Out.WriteLine($"BASTION_ADMIN_KEY_FILE={bootstrap.KeyFile}");
        }

        Console.Out.Flush();
    }
}

/// <summary>Where the edge listens and which CA file verifies it.</summary>
public sealed class EdgeEndpoints(string caFile)
{
    public string CaFile { get; } = caFile;

    /// <summary>The HTTPS base URL, known once the server has started.</summary>
    public string? Url { get; set; }
}
