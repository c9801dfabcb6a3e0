using System.Diagnostics;
using OpenTelemetry.Trace;

namespace Bastion.Diagnostics;

/// <summary>
/// Starts traces only where work arrives from outside: a server span with no parent (an HTTP request, a call from a
/// backend service). A span with a parent follows its parent's decision, local or remote. Without this, every
/// membership probe, directory lookup, grain timer and clustering-table poll would be a trace of its own, all day.
/// Dropped roots still propagate their (unsampled) context, so the silos they call drop their spans too.
/// </summary>
public sealed class RequestRootedSampler : Sampler
{
    /// <summary>Orleans grain timers run as incoming calls with no parent; they are not requests.</summary>
    private const string GrainTimerPrefix = "IGrainTimerInvoker/";

    private static readonly SamplingResult Sampled = new(SamplingDecision.RecordAndSample);
    private static readonly SamplingResult NotSampled = new(SamplingDecision.Drop);

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters)
    {
        var parent = samplingParameters.ParentContext;
        if (parent.TraceId != default)
        {
            return (parent.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? Sampled : NotSampled;
        }

        return samplingParameters.Kind == ActivityKind.Server && !samplingParameters.Name.StartsWith(GrainTimerPrefix, StringComparison.Ordinal)
            ? Sampled
            : NotSampled;
    }
}
