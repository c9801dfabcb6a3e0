using Bastion.Users;
using Microsoft.Extensions.Logging;

namespace Bastion.Generation;

/// <summary>
/// Runs one generation on the worker silo it activated on, as a sequence in the model's continuous-batching
/// engine (its own thread, off the grain scheduler), so the activation stays responsive while tokens are produced.
/// Placed on the worker silo with the shortest batching queue (<see cref="QueueDepthPlacement"/>).
/// </summary>
[GrainType("bastion.generation")]
[QueueDepthPlacement]
public sealed partial class GenerationGrain(ModelCatalog models, ILogger<GenerationGrain> logger) : Grain, IGenerationGrain
{
    /// <summary>How many text pieces may wait unread before the sequence is set aside.</summary>
    internal const int BufferCapacity = ModelCatalog.BufferCapacity;

    private readonly CancellationTokenSource _cancellation = new();
    private readonly CompletionBuffer _buffer = new(BufferCapacity);
    private (string Owner, PreparedGeneration Prepared)? _prepared;
    private Task<GenerationResult>? _run;
    private bool _reserved;

    public Task<int> PrepareAsync(string ownerPseudonym, GenerationRequest request)
    {
        if (_prepared is not null)
        {
            throw new InvalidOperationException("This generation has already been prepared.");
        }

        var prepared = models.Prepare(request);
        // A full queue refuses here, before the user grain admits (and charges) anything.
        models.Reserve(prepared);
        _reserved = true;
        _prepared = (ownerPseudonym, prepared);
        return Task.FromResult(prepared.PromptTokens.Length + prepared.MaxNewTokens);
    }

    public Task StartAsync()
    {
        if (_prepared is not { } prepared || _run is not null)
        {
            throw new InvalidOperationException("Only a prepared generation can start, and only once.");
        }

        _run = RunAsync(prepared.Owner, prepared.Prepared);
        return Task.CompletedTask;
    }

    public Task AbandonAsync()
    {
        ReleaseReservation();
        DeactivateOnIdle();
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
        _buffer.RemoveBound();
        try
        {
            return await run.WaitAsync(cancellationToken);
        }
        finally
        {
            DeactivateOnIdle();
        }
    }

    public async Task<GenerationChunk> ReadAsync(int fromIndex, int max, CancellationToken cancellationToken = default)
    {
        if (_run is null)
        {
            throw new InvalidOperationException("This generation was never started.");
        }

        var chunk = await _buffer.ReadAsync(fromIndex, max, cancellationToken);
        if (chunk.Finished)
        {
            DeactivateOnIdle();
        }

        return chunk;
    }

    private async Task<GenerationResult> RunAsync(string ownerPseudonym, PreparedGeneration prepared)
    {
        try
        {
            _reserved = false;
            var result = await models.Engine(prepared.Model).Enqueue(ownerPseudonym, prepared, _buffer, _cancellation.Token);
            try
            {
                await GrainFactory.GetGrain<IUserGrain>(ownerPseudonym).SettleAsync(this.GetPrimaryKey(), result.Usage);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogSettleFailed(logger, exception, ownerPseudonym);
                throw;
            }

            _buffer.Complete(result);
            return result;
        }
        catch (Exception exception)
        {
            _buffer.Fail(exception);
            throw;
        }
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        ReleaseReservation();
        _cancellation.Cancel();
        _cancellation.Dispose();
        return Task.CompletedTask;
    }

    private void ReleaseReservation()
    {
        if (_reserved && _prepared is { } prepared)
        {
            _reserved = false;
            models.Engine(prepared.Prepared.Model).Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Settling usage for user {Pseudonym} failed")]
    private static partial void LogSettleFailed(ILogger logger, Exception exception, string pseudonym);
}
