using System.Diagnostics;
using OpenTelemetry;

namespace Bastion.Diagnostics;

/// <summary>
/// Removes what could name a user from every span before it is exported: raw URL paths and query strings
/// (<c>/admin/users/alice</c>; the route template stays, as <c>http.route</c> and in the span name), grain ids (a user
/// grain's key is the user's pseudonym, an API-key route's the key id) and exception messages and stack traces (not
/// known to be free of request data; the exception type stays, and the details are in the logs under the same trace id).
/// Registered ahead of every exporter.
/// </summary>
public sealed class TelemetryRedaction : BaseProcessor<Activity>
{
    /// <summary>Span attributes that are never exported.</summary>
    public static readonly IReadOnlySet<string> RemovedTags = new HashSet<string>(StringComparer.Ordinal)
    {
        "url.path",
        "url.query",
        "url.full",
        "http.target",
        "http.url",
        "orleans.rpc.target_id",
        "orleans.rpc.source_id",
        "orleans.grain.id",
        "orleans.activation.id",
        "orleans.directory.registered.address",
        "orleans.directory.forwarding.address",
        "orleans.durable_job.target_grain_id",
        "exception.message",
        "exception.stacktrace",
    };

    public override void OnEnd(Activity data)
    {
        ArgumentNullException.ThrowIfNull(data);
        List<string>? removed = null;
        foreach (var tag in data.TagObjects)
        {
            if (RemovedTags.Contains(tag.Key))
            {
                (removed ??= []).Add(tag.Key);
            }
        }

        foreach (var key in removed ?? [])
        {
            data.SetTag(key, null);
        }
    }
}
