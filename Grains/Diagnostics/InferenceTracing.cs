using System.Diagnostics;

namespace Bastion.Diagnostics;

/// <summary>
/// The spans of the batching engine (docs/metrics.md, "Traces"): for each sequence, its wait in the model's queue,
/// its prefill and its decode, children of the generation grain call that queued it. Attributes name the model,
/// the operation and token counts only: never the owner, the prompt or the completion.
/// </summary>
public static class InferenceTracing
{
    /// <summary>The <see cref="ActivitySource"/> name a tracer provider subscribes to.</summary>
    public const string SourceName = "Bastion.Inference";

    /// <summary>From joining the model's queue to leaving it for a prefill (or being cancelled there).</summary>
    public const string QueueWaitSpan = "bastion.inference.queue_wait";

    /// <summary>The prompt's forward pass (prefill), with the other joiners of its group, and its first token.</summary>
    public const string PrefillSpan = "bastion.inference.prefill";

    /// <summary>From the first token to the sequence's end, decoding in the batch.</summary>
    public const string DecodeSpan = "bastion.inference.decode";

    // An ActivitySource is a stateless name that listeners subscribe to, shared by every engine of the process; it
    // holds no data of its own, as the .NET tracing guidance has it.
    internal static readonly ActivitySource Source = new(SourceName);
}
