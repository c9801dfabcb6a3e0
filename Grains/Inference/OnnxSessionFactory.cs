using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace Bastion.Inference;

/// <summary>Creates ONNX Runtime sessions on the configured execution provider.</summary>
public sealed class OnnxSessionFactory(InferenceRuntimeOptions options, ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    public InferenceRuntimeOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    public ProviderSession Create(string modelPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        return Create(sessionOptions => new InferenceSession(modelPath, sessionOptions));
    }

    public ProviderSession Create(byte[] model) => Create(model, []);

    /// <summary>
    /// A session of <paramref name="model"/> whose external data comes from <paramref name="externalData"/>' bytes,
    /// never from disk: what was hashed is what runs.
    /// </summary>
    public ProviderSession Create(byte[] model, IReadOnlyList<ExternalDataFile> externalData)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(externalData);
        return Create(sessionOptions =>
        {
            OnnxExternalData.AddFilesInMemory(sessionOptions, externalData);
            return new InferenceSession(model, sessionOptions);
        });
    }

    private ProviderSession Create(Func<SessionOptions, InferenceSession> open)
    {
        if (Options.ExecutionProvider != ExecutionProviderKind.Cpu)
        {
            try
            {
                return Open(open, ExecutionProviderKind.Cuda);
            }
            catch (OnnxRuntimeException ex) when (Options.ExecutionProvider == ExecutionProviderKind.Auto)
            {
                InferenceLog.CudaUnavailableFallingBackToCpu(_logger, ex.Message);
            }
            catch (OnnxRuntimeException ex)
            {
                throw new InvalidOperationException(
                    $"{InferenceRuntimeOptions.SectionName}:{nameof(InferenceRuntimeOptions.ExecutionProvider)} is " +
                    $"{ExecutionProviderKind.Cuda} but the CUDA execution provider could not load " +
                    $"(it needs CUDA 13 and cuDNN on the host): {ex.Message}", ex);
            }
        }

        return Open(open, ExecutionProviderKind.Cpu);
    }

    private ProviderSession Open(Func<SessionOptions, InferenceSession> open, ExecutionProviderKind provider)
    {
        // Fresh options per attempt: a failed CUDA append must not leak state into the CPU session.
        using var sessionOptions = CreateSessionOptions();
        if (provider == ExecutionProviderKind.Cuda)
        {
            sessionOptions.AppendExecutionProvider_CUDA(Options.CudaDeviceId);
        }

        var session = open(sessionOptions);
        InferenceLog.SessionCreated(_logger, provider, Options.IntraOpThreads);
        return new ProviderSession(session, provider);
    }

    private SessionOptions CreateSessionOptions()
    {
        var sessionOptions = new SessionOptions
        {
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = Options.IntraOpThreads,
            InterOpNumThreads = 1,
        };
        var spin = Options.AllowSpinning ? "1" : "0";
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", spin);
        sessionOptions.AddSessionConfigEntry("session.inter_op.allow_spinning", spin);
        return sessionOptions;
    }
}

/// <summary>An ONNX Runtime session and the execution provider it actually runs on.</summary>
public sealed class ProviderSession(InferenceSession session, ExecutionProviderKind provider) : IDisposable
{
    public InferenceSession Session { get; } = session;

    /// <summary><see cref="ExecutionProviderKind.Cuda"/> or <see cref="ExecutionProviderKind.Cpu"/>; never Auto.</summary>
    public ExecutionProviderKind Provider { get; } = provider;

    public void Dispose() => Session.Dispose();
}
