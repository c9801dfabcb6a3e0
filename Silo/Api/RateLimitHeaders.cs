using System.Globalization;
using Bastion.Limits;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Bastion.Api;

/// <summary>
/// Limit standing on the wire: the IETF <c>RateLimit-Policy</c> / <c>RateLimit</c> fields
/// (draft-ietf-httpapi-ratelimit-headers: <c>"name";q=…;w=…</c> and <c>"name";r=…;t=…</c>) and <c>Retry-After</c>.
/// </summary>
public static class RateLimitHeaders
{
    /// <summary>Describes <paramref name="status"/> on the response.</summary>
    public static void Write(HttpContext context, LimitStatus status)
    {
        var name = Name(status.Kind);
        var policy = status.Window is { } window
            ? $"\"{name}\";q={status.Limit};w={Seconds(window)}"
            : $"\"{name}\";q={status.Limit}";
        context.Response.Headers["RateLimit-Policy"] = policy;
        context.Response.Headers["RateLimit"] = $"\"{name}\";r={status.Remaining};t={Seconds(status.ResetAfter)}";
    }

    /// <summary>The 429 (or 400, for a request larger than the limit itself) for an exhausted limit.</summary>
    public static ProblemHttpResult Refuse(HttpContext context, LimitStatus status)
    {
        Write(context, status);
        var name = Name(status.Kind);
        if (status.NeverFits)
        {
            return Problems.InvalidRequest($"The request needs more than the whole '{name}' limit ({status.Limit}); lower 'max_tokens' or the prompt.");
        }

        context.RequestServices.GetService<Bastion.Diagnostics.BastionMetrics>()?.RecordRateLimitRefusal(name);
        context.Response.Headers[HeaderNames.RetryAfter] = Seconds(status.RetryAfter).ToString(CultureInfo.InvariantCulture);
        return status.IsQuota
            ? Problems.QuotaExceeded($"The '{name}' quota of {status.Limit} tokens is used up until the period resets.")
            : Problems.RateLimited($"The '{name}' limit of {status.Limit} is reached; retry after the Retry-After interval.");
    }

    private static string Name(LimitKind kind) => kind switch
    {
        LimitKind.Requests => "requests",
        LimitKind.Tokens => "tokens",
        LimitKind.Concurrency => "concurrency",
        LimitKind.DailyTokens => "daily-tokens",
        _ => "monthly-tokens",
    };

    // Whole seconds, rounded up: a client that waits exactly this long must not be refused again.
    private static long Seconds(TimeSpan span) => span <= TimeSpan.Zero ? 0 : (long)Math.Ceiling(span.TotalSeconds);
}
