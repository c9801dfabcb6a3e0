namespace Bastion.Generation;

/// <summary>
/// A request the worker cannot serve as asked (unknown model, prompt longer than the context, queue full).
/// Its message is written for the caller and holds nothing internal.
/// </summary>
[GenerateSerializer, Alias("bastion.generation-rejected")]
public sealed class GenerationRejectedException : Exception
{
    /// <summary>The code for a model this silo does not serve.</summary>
    public const string ModelNotFound = "model_not_found";

    /// <summary>The code for a prompt and <c>max_tokens</c> that do not fit the model's context.</summary>
    public const string ContextLengthExceeded = "context_length_exceeded";

    /// <summary>The code for a worker whose queue is full: retry later, nothing was charged.</summary>
    public const string Overloaded = "overloaded";

    /// <summary>
    /// The code for a worker that is stopping (draining) or stopped while the generation ran: retry, another
    /// worker serves it. Usage already produced is settled; a refusal before admission charges nothing.
    /// </summary>
    public const string WorkerUnavailable = "worker_unavailable";

    /// <summary>The code for inference stopped by the operator's emergency switch (<c>IEmergencyGrain</c>): retry later, nothing was charged.</summary>
    public const string InferenceStopped = "inference_stopped";

    /// <summary>The code for a prompt the input guard refused (docs/guards.md): nothing was charged; the message names the check.</summary>
    public const string InputRejected = "input_rejected";

    /// <summary>Creates the exception.</summary>
    public GenerationRejectedException(string code, string message) : base(message) => Code = code;

    /// <summary>A stable, machine-readable reason such as <c>model_not_found</c>.</summary>
    [Id(0)]
    public string Code { get; }
}
