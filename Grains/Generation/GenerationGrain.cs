using Bastion.Users;
using Microsoft.Extensions.Logging;

namespace Bastion.Generation;

/// <summary>
/// Runs one generation on the worker silo it activated on. The model runs on the thread pool, off
/// the grain scheduler, so the activation stays responsive while tokens are produced.
/// </summary>
[GrainType("bastion.generation")]
public sealed partial class GenerationGrain(ModelCatalog models, ILogger<GenerationGrain> logger) : Grain, IGenerationGrain
{
    private readonly CancellationTokenSource _cancellation = new();
    private Task<GenerationResult>? _run;

    public Task StartAsync(string ownerPseudonym, GenerationRequest request)
    {
        if (_run is not null)
        {
            throw new InvalidOperationException("This generation has already started.");
        }

        // Validation (model, prompt length) happens here so that a bad request fails the caller's
        // submit instead of surfacing later.
        var prepared = models.Prepare(request);
        _run = RunAsync(ownerPseudonym, prepared);
        return Task.CompletedTask;
    }

    public Task CancelAsync()
    {
        _cancellation.Cancel();
        return Task.CompletedTask;
    }

    public async Task<GenerationResult> GetResultAsync(CancellationToken cancellationToken = default)
    {
        var run = _run ?? throw new InvalidOperationException("This generation was never started.");
        try
        {
            return await run.WaitAsync(cancellationToken);
        }
        finally
        {
            DeactivateOnIdle();
        }
    }

    private async Task<GenerationResult> RunAsync(string ownerPseudonym, PreparedGeneration prepared)
    {
        var result = await Task.Run(() => models.Generate(prepared, _cancellation.Token));
        try
        {
            await GrainFactory.GetGrain<IUserGrain>(ownerPseudonym).SettleAsync(this.GetPrimaryKey(), result.Usage);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogSettleFailed(logger, exception, ownerPseudonym);
            throw;
        }

        return result;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _cancellation.Cancel();
        _cancellation.Dispose();
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Settling usage for user {Pseudonym} failed")]
    private static partial void LogSettleFailed(ILogger logger, Exception exception, string pseudonym);
}
