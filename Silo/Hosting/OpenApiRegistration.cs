using Bastion.Api;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Bastion.Hosting;

/// <summary>
/// The OpenAPI description of the HTTP API (docs/openapi.md), served only in Development: at
/// <c>GET /openapi/v1.json</c> to anyone, with an interactive page at <c>/openapi/</c> whose assets are embedded
/// (no CDN). Outside Development neither is mapped: the document names every admin route, and a deployment
/// publishes it from a development build instead. Routes say what they do and return beside their <c>Map</c> calls;
/// what every route of a kind shares (the credential, 401 and 403 from the permission filter, the body problems
/// of a route that reads JSON, 409 while changes are frozen) is added here once.
/// </summary>
public static class OpenApiRegistration
{
    public const string DocumentPath = "/openapi/v1.json";

    private const string InteractivePagePrefix = "openapi";

    private const string BearerScheme = "bearer";

    private const string ProblemContentType = "application/problem+json";

    public static IServiceCollection AddBastionOpenApi(this IServiceCollection services)
    {
        return services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Bastion",
                    Version = "v1",
                    Description = "OpenAI-compatible inference, account and administration API. Every error is application/problem+json "
                        + "with a stable type, a traceId and OpenAI's error member.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal)
                {
                    [BearerScheme] = new OpenApiSecurityScheme
                    {
                        Type = SecuritySchemeType.Http,
                        Scheme = "bearer",
                        Description = "An API key (bst_…) as the bearer token, as OpenAI SDKs send it; or an access token (a JWT) from "
                            + "POST /v1/auth/token or a configured external issuer.",
                    },
                };
                return Task.CompletedTask;
            });
            options.AddSchemaTransformer(NameMembersAsOnTheWire);
            options.AddOperationTransformer(DescribeCompletionRoutesAsync);
            options.AddOperationTransformer(DescribeSharedResponsesAsync);
            options.AddDocumentTransformer(DescribeEndpointsOutsideTheApiExplorer);
        });
    }

    public static WebApplication MapBastionOpenApi(this WebApplication app)
    {
        app.MapOpenApi(DocumentPath).AllowAnonymousCaller().ExcludeFromDescription();
        // Static assets only (embedded in the package); the page reads the document above.
        app.UseSwaggerUI(options =>
        {
            options.RoutePrefix = InteractivePagePrefix;
            options.DocumentTitle = "Bastion API";
            options.SwaggerEndpoint(DocumentPath, "Bastion v1");
        });
        return app;
    }

    /// <summary>
    /// Names each schema's members as the API writes them (ApiJsonContext: snake_case). The HTTP JSON options carry no
    /// naming policy of their own, since that would also rename problem extensions such as <c>traceId</c>.
    /// </summary>
    private static Task NameMembersAsOnTheWire(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken cancellationToken)
    {
        if (schema.Properties is { Count: > 0 } properties)
        {
            schema.Properties = properties.ToDictionary(pair => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(pair.Key), pair => pair.Value, StringComparer.Ordinal);
            if (schema.Required is { Count: > 0 } required)
            {
                schema.Required = required.Select(System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName).ToHashSet(StringComparer.Ordinal);
            }
        }

        return Task.CompletedTask;
    }

    private static async Task DescribeSharedResponsesAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        operation.Responses ??= [];
        if (metadata.OfType<RequiredPermission>().FirstOrDefault() is { } required)
        {
            operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] }];
            operation.Description = $"Requires the {required.Permission} permission.";
            await AddProblemAsync(operation, context, StatusCodes.Status401Unauthorized, "No valid API key or access token (one identical body whatever the cause).", cancellationToken);
            await AddProblemAsync(operation, context, StatusCodes.Status403Forbidden, "The caller's roles do not grant the permission.", cancellationToken);
            await AddProblemAsync(operation, context, StatusCodes.Status503ServiceUnavailable, "Keys or a part of the cluster are unavailable; retry after Retry-After.", cancellationToken);
        }

        if (metadata.OfType<IAcceptsMetadata>().Any())
        {
            await AddProblemAsync(operation, context, StatusCodes.Status400BadRequest, "The body is not valid JSON of the expected shape, or a value is out of range.", cancellationToken);
            await AddProblemAsync(operation, context, StatusCodes.Status413PayloadTooLarge, "The body is too large.", cancellationToken);
            await AddProblemAsync(operation, context, StatusCodes.Status415UnsupportedMediaType, "The body is not application/json.", cancellationToken);
        }

        if (metadata.OfType<FrozenRoute>().Any())
        {
            await AddProblemAsync(operation, context, StatusCodes.Status409Conflict, "An operator has frozen changes that grant access (changes-frozen).", cancellationToken);
        }
    }

    /// <summary>
    /// The completion routes are described here rather than beside their <c>Map</c> calls: their 200 answer has two
    /// media types with different schemas (a JSON object, or server-sent chunks), which route metadata, one type per
    /// status code, cannot say.
    /// </summary>
    private static async Task DescribeCompletionRoutesAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var (request, response, chunk, summary) = context.Description.RelativePath switch
        {
            "v1/completions" => (typeof(CompletionRequest), typeof(CompletionResponse), typeof(CompletionChunk), "Completes a prompt (OpenAI's legacy completions)."),
            "v1/chat/completions" => (typeof(ChatCompletionRequest), typeof(ChatCompletionResponse), typeof(ChatCompletionChunk), "Completes a chat (OpenAI's chat completions)."),
            _ => default,
        };
        if (request is null)
        {
            return;
        }

        operation.Tags = new HashSet<OpenApiTagReference> { new("Inference", context.Document) };
        operation.Summary = summary;
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
            {
                ["application/json"] = new() { Schema = await context.GetOrCreateSchemaAsync(request, null, cancellationToken) },
            },
        };
        operation.Responses ??= [];
        operation.Responses["200"] = new OpenApiResponse
        {
            Description = "The completion; with \"stream\": true, server-sent events of chunks ending with data: [DONE] "
                + "(a failure after the stream started is an error event, then [DONE]).",
            Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
            {
                ["application/json"] = new() { Schema = await context.GetOrCreateSchemaAsync(response, null, cancellationToken) },
                ["text/event-stream"] = new() { Schema = await context.GetOrCreateSchemaAsync(chunk, null, cancellationToken) },
            },
        };
        await AddProblemAsync(operation, context, StatusCodes.Status400BadRequest, "Invalid JSON or parameters, an unsupported field (named in error.param), the prompt does not fit the model's context (context-length-exceeded), or the input guard refused it (input-rejected).", cancellationToken);
        await AddProblemAsync(operation, context, StatusCodes.Status404NotFound, "No model of this name (model-not-found).", cancellationToken);
        await AddProblemAsync(operation, context, StatusCodes.Status413PayloadTooLarge, "The body is too large.", cancellationToken);
        await AddProblemAsync(operation, context, StatusCodes.Status415UnsupportedMediaType, "The body is not application/json.", cancellationToken);
        await AddProblemAsync(operation, context, StatusCodes.Status429TooManyRequests, "A request, token or concurrency limit or a quota is reached (rate-limited, quota-exceeded); see Retry-After.", cancellationToken);
        await AddProblemAsync(operation, context, StatusCodes.Status503ServiceUnavailable, "Inference is stopped, the workers are overloaded, or a worker failed; retry.", cancellationToken);
    }

    private static async Task AddProblemAsync(
        OpenApiOperation operation, OpenApiOperationTransformerContext context, int status, string description, CancellationToken cancellationToken)
    {
        var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (operation.Responses!.ContainsKey(key))
        {
            return;
        }

        operation.Responses[key] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
            {
                [ProblemContentType] = new() { Schema = await context.GetOrCreateSchemaAsync(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails), null, cancellationToken) },
            },
        };
    }

    /// <summary>
    /// <c>/healthz</c> (a health-check endpoint), <c>/readyz</c> (a plain request delegate) and <c>/metrics</c> (the
    /// Prometheus exporter's) are not route handlers, so the API explorer does not see them; they are described here.
    /// </summary>
    private static Task DescribeEndpointsOutsideTheApiExplorer(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Paths ??= [];
        document.Paths["/healthz"] = new OpenApiPathItem
        {
            Operations = new()
            {
                [HttpMethod.Get] = new OpenApiOperation
                {
                    Tags = new HashSet<OpenApiTagReference> { new("Health", document) },
                    Summary = "Liveness: the process answers.",
                    Responses = new OpenApiResponses { ["200"] = PlainText("Healthy.") },
                },
            },
        };
        document.Paths["/readyz"] = new OpenApiPathItem
        {
            Operations = new()
            {
                [HttpMethod.Get] = new OpenApiOperation
                {
                    Tags = new HashSet<OpenApiTagReference> { new("Health", document) },
                    Summary = "Readiness: cluster joined, database and keys reachable, models loaded on workers; each check's details only for admins.",
                    Responses = new OpenApiResponses
                    {
                        ["200"] = new OpenApiResponse { Description = "Ready: {\"status\":\"Healthy\"} (or Degraded)." },
                        ["503"] = new OpenApiResponse { Description = "Not ready: {\"status\":\"Unhealthy\"}." },
                    },
                },
            },
        };
        document.Paths["/metrics"] = new OpenApiPathItem
        {
            Operations = new()
            {
                [HttpMethod.Get] = new OpenApiOperation
                {
                    Tags = new HashSet<OpenApiTagReference> { new("Operations", document) },
                    Summary = "Prometheus metrics of this silo (also on a separate plain-HTTP port when configured).",
                    Description = "Requires the ReadMetrics permission.",
                    Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] }],
                    Responses = new OpenApiResponses
                    {
                        ["200"] = PlainText("Metrics in the Prometheus text format."),
                        ["401"] = new OpenApiResponse { Description = "No valid API key or access token." },
                        ["403"] = new OpenApiResponse { Description = "The caller's roles do not grant the permission." },
                        ["503"] = new OpenApiResponse { Description = "Keys or a part of the cluster are unavailable; retry after Retry-After." },
                    },
                },
            },
        };
        return Task.CompletedTask;
    }

    private static OpenApiResponse PlainText(string description) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal) { ["text/plain"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } } },
    };
}
