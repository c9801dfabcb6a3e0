using Microsoft.Extensions.Logging;

namespace Bastion.Inference;

internal static partial class InferenceLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "CUDA execution provider could not load ({Reason}); running inference on CPU")]
    public static partial void CudaUnavailableFallingBackToCpu(ILogger logger, string reason);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information,
        Message = "ONNX Runtime session ready on {Provider} ({IntraOpThreads} intra-op threads)")]
    public static partial void SessionCreated(ILogger logger, ExecutionProviderKind provider, int intraOpThreads);
}
