using System.Diagnostics;
using Bastion.Diagnostics;

namespace Bastion.Tests.Silo.Diagnostics;

public sealed class TelemetryRedactionTests
{
    [Fact]
    public void OnEnd_SpanWithPathsGrainIdsAndExceptionDetails_KeepsOnlyWhatNamesNoOne()
    {
        using var span = new Activity("Bastion.Users.IUserGrain/SubmitAsync");
        span.SetTag("url.path", "/admin/users/alice")
            .SetTag("url.query", "?user=alice")
            .SetTag("orleans.rpc.target_id", "user/pseudonym-of-alice")
            .SetTag("orleans.rpc.source_id", "api-key-route/key-id")
            .SetTag("exception.message", "alice was not found")
            .SetTag("exception.stacktrace", "at alice")
            .SetTag("exception.type", "System.InvalidOperationException")
            .SetTag("http.route", "/admin/users/{id}")
            .SetTag("rpc.method", "IUserGrain/SubmitAsync");

        using var redaction = new TelemetryRedaction();
        redaction.OnEnd(span);

        Assert.Equal(
            ["exception.type", "http.route", "rpc.method"],
            span.TagObjects.Select(tag => tag.Key).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(span.TagObjects, tag => tag.Value?.ToString()?.Contains("alice", StringComparison.Ordinal) == true);
    }
}
