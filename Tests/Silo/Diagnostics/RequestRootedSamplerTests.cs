using System.Diagnostics;
using Bastion.Diagnostics;
using OpenTelemetry.Trace;

namespace Bastion.Tests.Silo.Diagnostics;

public sealed class RequestRootedSamplerTests
{
    private static readonly ActivityContext SampledParent = new(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded, isRemote: true);
    private static readonly ActivityContext UnsampledParent = new(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.None, isRemote: true);

    [Theory]
    [InlineData("POST /v1/completions", ActivityKind.Server, true)]
    [InlineData("Bastion.Generation.IGenerationGrain/StartAsync", ActivityKind.Server, true)]
    [InlineData("IMembershipService/Ping", ActivityKind.Client, false)]
    [InlineData("postgresql", ActivityKind.Client, false)]
    [InlineData("IGrainTimerInvoker/InvokeCallbackAsync", ActivityKind.Server, false)]
    [InlineData("bastion.inference.decode", ActivityKind.Internal, false)]
    public void ShouldSample_Root_OnlyRequestsStartTraces(string name, ActivityKind kind, bool sampled)
    {
        var result = new RequestRootedSampler().ShouldSample(new SamplingParameters(default, ActivityTraceId.CreateRandom(), name, kind));

        Assert.Equal(sampled ? SamplingDecision.RecordAndSample : SamplingDecision.Drop, result.Decision);
    }

    [Theory]
    [InlineData(ActivityKind.Client)]
    [InlineData(ActivityKind.Internal)]
    [InlineData(ActivityKind.Server)]
    public void ShouldSample_WithParent_FollowsTheParent(ActivityKind kind)
    {
        var sampler = new RequestRootedSampler();

        Assert.Equal(SamplingDecision.RecordAndSample, sampler.ShouldSample(new SamplingParameters(SampledParent, SampledParent.TraceId, "IMembershipService/Ping", kind)).Decision);
        Assert.Equal(SamplingDecision.Drop, sampler.ShouldSample(new SamplingParameters(UnsampledParent, UnsampledParent.TraceId, "POST /v1/completions", kind)).Decision);
    }
}
