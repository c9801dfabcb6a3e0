namespace Bastion.Cluster;

/// <summary>
/// Verifies every call a silo receives, whoever the sender says it is (<c>RequestContext</c> is the caller's to
/// write, and a call filter never sees the peer's certificate):
/// <list type="bullet">
/// <item>a call carrying a valid <see cref="SiloAssertion"/> for exactly this call (sender, target, method, arguments) came from a silo and may reach anything;</item>
/// <item>any other call must carry a valid service token (<see cref="ServiceTokens"/>) and may reach only the
/// <see cref="IServiceGateway"/> facade — never a user or generation grain, a management grain or a system target;</item>
/// <item>the exceptions are the gateway's type-manifest system target, which an Orleans client must read before it
/// can make any call at all (it describes grain types and interfaces, which are public code, and nothing else), and
/// timer ticks, which Orleans delivers to a grain or system target as a call made in this very process.</item>
/// </list>
/// Refusals are <see cref="ServiceRefusedException"/> and are logged with the target's type, never a token.
/// </summary>
public sealed partial class ZeroTrustCallFilter(SiloAssertion assertions, CallArgumentsDigest digests, ServiceTokens tokens, ILogger<ZeroTrustCallFilter> logger) : IIncomingGrainCallFilter
{
    private static readonly GrainType ManifestProviderType = SystemTargetGrainId.CreateGrainType("manifest");
    private static readonly System.Reflection.Assembly OrleansRuntime = typeof(SystemTarget).Assembly;

    /// <summary>The grain type of the facade (<c>ServiceGatewayGrain</c>).</summary>
    public static readonly GrainType GatewayType = GrainType.Create(ServiceGatewayGrain.GrainTypeName);

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (RequestContext.Get(ServiceCallContext.SiloAssertionKey) is string assertion
            && assertions.Verify(assertion, new SiloCall(context.SourceId, context.TargetId, context.InterfaceType, context.MethodName, digests.Of(context.Request))))
        {
            await context.Invoke();
            return;
        }

        if (context.TargetId.Type == ManifestProviderType || IsTimerTick(context))
        {
            await context.Invoke();
            return;
        }

        var caller = await tokens.ValidateAsync(RequestContext.Get(ServiceCallContext.ServiceTokenKey) as string);
        if (caller is null)
        {
            LogRefused(logger, context.TargetId.Type.ToString(), context.InterfaceType.ToString(), context.MethodName, "no valid service token or silo assertion");
            throw new ServiceRefusedException(ServiceRefusal.NotAuthenticated, "The call carries no valid service token.");
        }

        if (context.TargetId.Type != GatewayType || context.InterfaceMethod.DeclaringType != typeof(IServiceGateway))
        {
            LogRefused(logger, context.TargetId.Type.ToString(), context.InterfaceType.ToString(), context.MethodName, "not a facade interface");
            throw new ServiceRefusedException(ServiceRefusal.Forbidden, "Services may call only the service gateway.");
        }

        await context.Invoke();
    }

    /// <summary>
    /// A tick of a grain or system-target timer (Orleans' own, such as the load publisher's): its invokable is the
    /// runtime's internal <c>GrainTimer+TimerTickInvoker</c>, created in this process and never serialized, so no peer
    /// can send one.
    /// </summary>
    private static bool IsTimerTick(IIncomingGrainCallContext context) =>
        context.Request.GetType() is { DeclaringType.FullName: "Orleans.Runtime.GrainTimer" } type && type.Assembly == OrleansRuntime;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a call to {GrainType} {Interface}.{Method}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string grainType, string @interface, string method, string reason);
}
