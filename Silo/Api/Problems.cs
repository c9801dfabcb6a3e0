using System.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>
/// Every error Bastion returns, as <c>application/problem+json</c> with a stable <c>type</c>. Messages
/// are written for the caller and never carry exception text, type names, SQL or paths.
/// </summary>
public static class Problems
{
    public const string TypePrefix = "urn:bastion:problem:";

    /// <summary>The name of the extension that carries the offending field to <see cref="OpenAiError"/>'s <c>param</c>.</summary>
    public const string ParamExtension = "param";

    public static ProblemHttpResult InvalidRequest(string detail) => Create(StatusCodes.Status400BadRequest, "invalid-request", "The request is invalid.", detail);

    /// <summary>An invalid request whose OpenAI <c>error.param</c> names <paramref name="param"/>, the field at fault.</summary>
    public static ProblemHttpResult InvalidRequest(string detail, string param) => TypedResults.Problem(
        detail: detail, statusCode: StatusCodes.Status400BadRequest, title: "The request is invalid.", type: TypePrefix + "invalid-request",
        extensions: new Dictionary<string, object?>(StringComparer.Ordinal) { [ParamExtension] = param });

    /// <summary>The one body every authentication failure gets, whatever the cause.</summary>
    public static ProblemHttpResult Unauthorized() => Create(StatusCodes.Status401Unauthorized, "unauthorized", "Authentication failed.", "A valid API key or access token is required.");

    public static ProblemHttpResult Forbidden(string detail = "Your roles do not permit this operation.") => Create(StatusCodes.Status403Forbidden, "forbidden", "Not allowed.", detail);

    public static ProblemHttpResult NotFound(string detail) => Create(StatusCodes.Status404NotFound, "not-found", "Not found.", detail);

    public static ProblemHttpResult ModelNotFound(string detail) => Create(StatusCodes.Status404NotFound, "model-not-found", "Model not found.", detail);

    public static ProblemHttpResult ContextLengthExceeded(string detail) => Create(StatusCodes.Status400BadRequest, "context-length-exceeded", "The request does not fit the model's context.", detail);

    public static ProblemHttpResult InputRejected(string detail) => Create(StatusCodes.Status400BadRequest, "input-rejected", "The input guard refused the request.", detail);

    public static ProblemHttpResult Conflict(string detail) => Create(StatusCodes.Status409Conflict, "conflict", "Conflict.", detail);

    public static ProblemHttpResult PayloadTooLarge() => Create(StatusCodes.Status413PayloadTooLarge, "payload-too-large", "The request body is too large.", "Send a smaller request body.");

    public static ProblemHttpResult UnsupportedMediaType() => Create(StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type.", "Send the body as application/json.");

    public static ProblemHttpResult RateLimited(string detail) => Create(StatusCodes.Status429TooManyRequests, "rate-limited", "Too many requests.", detail);

    public static ProblemHttpResult QuotaExceeded(string detail) => Create(StatusCodes.Status429TooManyRequests, "quota-exceeded", "Quota exhausted.", detail);

    public static ProblemHttpResult Unavailable(string detail) => Create(StatusCodes.Status503ServiceUnavailable, "unavailable", "The service is unavailable.", detail);

    public static ProblemHttpResult Overloaded(string detail) => Create(StatusCodes.Status503ServiceUnavailable, "overloaded", "The service is overloaded.", detail);

    public static ProblemHttpResult InferenceStopped(string detail) => Create(StatusCodes.Status503ServiceUnavailable, "inference-stopped", "Inference is stopped.", detail);

    public static ProblemHttpResult ChangesFrozen() =>
        Create(StatusCodes.Status409Conflict, "changes-frozen", "Changes are frozen.", "An operator has frozen administrative changes that grant access; containment and reads still work.");

    /// <summary>The <c>type</c> for a status that has no more specific problem (unknown routes, unexpected failures).</summary>
    public static string TypeFor(int status) => TypePrefix + status switch
    {
        StatusCodes.Status400BadRequest => "invalid-request",
        StatusCodes.Status401Unauthorized => "unauthorized",
        StatusCodes.Status403Forbidden => "forbidden",
        StatusCodes.Status404NotFound => "not-found",
        StatusCodes.Status405MethodNotAllowed => "method-not-allowed",
        StatusCodes.Status413PayloadTooLarge => "payload-too-large",
        StatusCodes.Status415UnsupportedMediaType => "unsupported-media-type",
        StatusCodes.Status429TooManyRequests => "rate-limited",
        StatusCodes.Status503ServiceUnavailable => "unavailable",
        >= 500 => "internal-error",
        _ => "http-" + status,
    };

    /// <summary>
    /// The <c>error</c> member every problem also carries (an RFC 9457 extension), in the shape OpenAI's clients read,
    /// so that an SDK's exception holds the real message: <c>{"message","type","code","param"}</c>. <c>type</c> is
    /// OpenAI's error class for the status, <c>code</c> the problem type's last part in snake case (<c>model_not_found</c>).
    /// </summary>
    public static IReadOnlyDictionary<string, string?> OpenAiError(int status, string? type, string? message, string? param = null)
    {
        var name = type is not null && type.StartsWith(TypePrefix, StringComparison.Ordinal) ? type[TypePrefix.Length..] : TypeFor(status)[TypePrefix.Length..];
        var (errorType, code) = name switch
        {
            "rate-limited" => ("requests", "rate_limit_exceeded"),
            "quota-exceeded" => ("insufficient_quota", "insufficient_quota"),
            _ => (status switch
            {
                StatusCodes.Status401Unauthorized => "authentication_error",
                StatusCodes.Status403Forbidden => "permission_error",
                < 500 => "invalid_request_error",
                _ => "server_error",
            }, name.Replace('-', '_')),
        };
        return new Dictionary<string, string?>(StringComparer.Ordinal) { ["message"] = message, ["type"] = errorType, ["code"] = code, ["param"] = param };
    }

    /// <summary>The trace id every problem carries, so an operator can find the request in the logs.</summary>
    public static string TraceId(HttpContext context) => Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier;

    private static ProblemHttpResult Create(int status, string type, string title, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: title, type: TypePrefix + type);
}
