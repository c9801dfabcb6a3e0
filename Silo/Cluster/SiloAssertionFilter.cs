namespace Bastion.Cluster;

/// <summary>Attaches a fresh <see cref="SiloAssertion"/>, bound to the call's target and method, to every call this silo makes.</summary>
public sealed class SiloAssertionFilter(SiloAssertion assertions) : IOutgoingGrainCallFilter
{
    public Task Invoke(IOutgoingGrainCallContext context)
    {
        RequestContext.Set(ServiceCallContext.SiloAssertionKey, assertions.Create(context.TargetId, context.InterfaceType, context.MethodName));
        return context.Invoke();
    }
}
