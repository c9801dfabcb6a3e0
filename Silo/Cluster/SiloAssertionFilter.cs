namespace Bastion.Cluster;

/// <summary>Attaches a fresh <see cref="SiloAssertion"/>, bound to the call's sender, target, method and arguments, to every call this silo makes.</summary>
public sealed class SiloAssertionFilter(SiloAssertion assertions, CallArgumentsDigest digests, ILocalSiloDetails silo) : IOutgoingGrainCallFilter
{
    // A call made outside any grain (an HTTP handler, a hosted service) leaves this silo as its hosted client, and
    // the receiver sees that id as the sender; Orleans names it after the silo's address.
    private readonly GrainId _hostedClient = GrainId.Create("sys.client", "hosted-" + silo.SiloAddress.ToParsableString());

    public Task Invoke(IOutgoingGrainCallContext context)
    {
        var call = new SiloCall(context.SourceId ?? _hostedClient, context.TargetId, context.InterfaceType, context.MethodName, digests.Of(context.Request));
        RequestContext.Set(ServiceCallContext.SiloAssertionKey, assertions.Create(call));
        return context.Invoke();
    }
}
