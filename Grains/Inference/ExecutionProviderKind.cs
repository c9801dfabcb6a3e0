namespace Bastion.Inference;

/// <summary>Which ONNX Runtime execution provider runs the model.</summary>
public enum ExecutionProviderKind
{
    /// <summary>Try CUDA; fall back to CPU with a warning when CUDA cannot load.</summary>
    Auto,

    /// <summary>CUDA only; fail fast when it cannot load.</summary>
    Cuda,

    /// <summary>CPU only; CUDA is never tried.</summary>
    Cpu,
}
