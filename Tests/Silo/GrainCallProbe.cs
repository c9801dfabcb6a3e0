namespace Bastion.Tests.Silo;

/// <summary>One call a grain received: its interface method, its target, its arguments, and — once it returned — its result.</summary>
internal sealed record ProbedCall(Type Interface, string Method, GrainId Target, object?[] Arguments, bool Returned, object? Result)
{
    /// <summary>The target's key, for grains keyed by a <see cref="Guid"/> (generations).</summary>
    public Guid GuidKey => Target.GetGuidKey();

    public bool Is<TInterface>(string method) => Interface == typeof(TInterface) && Method == method;
}

/// <summary>
/// An incoming grain-call filter that only watches: it records each call as it arrives and again when it returns, so a
/// test can wait (without sleeping) for what a silo did on its own — a generation renewing its lease, settling, being
/// cancelled. It sees grain interfaces only, never how the grains work inside.
/// </summary>
internal sealed class GrainCallProbe : IIncomingGrainCallFilter
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly Lock _gate = new();
    private readonly List<ProbedCall> _calls = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        var arguments = new object?[context.Request.GetArgumentCount()];
        for (var index = 0; index < arguments.Length; index++)
        {
            arguments[index] = context.Request.GetArgument(index);
        }

        var call = new ProbedCall(context.InterfaceMethod.DeclaringType!, context.MethodName, context.TargetId, arguments, Returned: false, Result: null);
        Record(call);
        await context.Invoke();
        Record(call with { Returned = true, Result = context.Result });
    }

    /// <summary>How many recorded calls match.</summary>
    public int Count(Func<ProbedCall, bool> match)
    {
        lock (_gate)
        {
            return _calls.Count(match);
        }
    }

    /// <summary>The <paramref name="count"/>th recorded call that matches, once there is one; fails after a minute of real time.</summary>
    public async Task<ProbedCall> WaitForAsync(Func<ProbedCall, bool> match, string what, int count = 1)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                var matching = _calls.Where(match).Take(count).ToList();
                if (matching.Count == count)
                {
                    return matching[^1];
                }

                changed = _changed.Task;
            }

            try
            {
                await changed.WaitAsync(Patience);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"{what}: no such call within {Patience.TotalSeconds} s of real time. The last calls:\n{Describe(30)}");
            }
        }
    }

    /// <summary>The last <paramref name="count"/> calls recorded, one per line, for a failure message.</summary>
    private string Describe(int count)
    {
        lock (_gate)
        {
            return string.Join('\n', _calls.TakeLast(count).Select(c =>
                $"{c.Interface.Name}.{c.Method} {c.Target}{(c.Returned ? " returned " + c.Result : " called")}"));
        }
    }

    private void Record(ProbedCall call)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _calls.Add(call);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.SetResult();
    }
}
