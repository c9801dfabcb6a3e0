using System.ComponentModel.DataAnnotations;

namespace Bastion.Inference;

/// <summary>How ONNX Runtime sessions are created.</summary>
public sealed class InferenceRuntimeOptions
{
    public const string SectionName = "Bastion:Inference";

    public ExecutionProviderKind ExecutionProvider { get; init; } = ExecutionProviderKind.Auto;

    /// <summary>Intra-op thread pool size; 0 lets ONNX Runtime pick one per physical core.</summary>
    [Range(0, 1024)]
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// Whether idle intra-op threads spin. Spinning shaves latency but burns whole cores between
    /// decode steps, which starves the silo on small hosts; off by default.
    /// </summary>
    public bool AllowSpinning { get; init; }

    [Range(0, 64)]
    public int CudaDeviceId { get; init; }
}
