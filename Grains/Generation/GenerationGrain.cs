using System.Globalization;
using Bastion.Access;
using Bastion.Audit;
using Bastion.Guards;
using Bastion.Limits;
using Bastion.Users;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bastion.Generation;

/// <summary>
/// Runs one generation on the worker silo it activated on, as a sequence in the model's continuous-batching
/// engine (its own thread, off the grain scheduler), so the activation stays responsive while tokens are produced.
/// Placed on the worker silo with the shortest batching queue (<see cref="QueueDepthPlacement"/>).
/// </summary>
[GrainType("bastion.generation")]
[QueueDepthPlacement]
public sealed partial class GenerationGrain(
    ModelCatalog models, WorkerDrain drain, TimeProvider time, IOptions<LimitOptions> limitOptions, IAuditTrail audit, EmergencySwitchboard emergency,
    InputGuard inputGuard, ILogger<GenerationGrain> logger)
    : Grain, IGenerationGrain
{
    /// <summary>
    /// How long a finished generation keeps trying to settle its usage when the user's grain was on a silo that died:
    /// the grain reactivates elsewhere once membership declares that silo dead (seconds), well within this.
    /// </summary>
    internal static readonly TimeSpan SettleRetryWindow = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan SettleRetryDelay = TimeSpan.FromMilliseconds(250);

    /// <summary>How many text pieces may wait unread before the sequence is set aside.</summary>
    internal const int BufferCapacity = ModelCatalog.BufferCapacity;

    private readonly CancellationTokenSource _cancellation = new();
    private readonly CompletionBuffer _buffer = new(BufferCapacity);
    private (string Owner, PreparedGeneration Prepared)? _prepared;
    private Task<GenerationResult>? _run;
    private bool _reserved;

    /// <summary>The service that started this generation through the gateway (<see cref="BindServiceAsync"/>); null over HTTP.</summary>
    private string? _servicePseudonym;

    /// <summary>Set when this silo ends the generation (drain timeout, deactivation), as opposed to the user cancelling it.</summary>
    private volatile bool _stoppedBySilo;

    public async Task<int> PrepareAsync(string ownerPseudonym, string[] ownerRoles, GenerationRequest request)
    {
        if (_prepared is not null)
        {
            throw new InvalidOperationException("This generation has already been prepared.");
        }

        if ((await emergency.GetAsync()).InferenceStopped)
        {
            // The operator's emergency switch: every front door reaches a worker through here, before anything is charged.
            throw new GenerationRejectedException(GenerationRejectedException.InferenceStopped, "Inference is stopped by an operator; retry later.");
        }

        if (drain.IsDraining)
        {
            // Refused before the user grain admits anything: nothing is charged, and the retry lands elsewhere.
            throw Unavailable("This worker is stopping; retry after the Retry-After interval.");
        }

        var prepared = models.Prepare(request);
        await GuardInputAsync(ownerPseudonym, ownerRoles, request, prepared);

        // A full queue refuses here, before the user grain admits (and charges) anything.
        models.Reserve(prepared);
        _reserved = true;
        _prepared = (ownerPseudonym, prepared);
        // With several choices, each may generate max_tokens: the prompt counts once (as usage will).
        return checked((int)prepared.MaxTotalTokens);
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
        // No run here means the activation that ran it is gone (its silo died); this one was made by the call.
        var run = _run ?? throw Lost();
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
            DeactivateOnIdle();
            throw Lost();
        }

        var chunk = await _buffer.ReadAsync(fromIndex, max, cancellationToken);
        if (chunk.Finished)
        {
            DeactivateOnIdle();
        }

        return chunk;
    }

    public Task BindServiceAsync(string servicePseudonym)
    {
        if (_prepared is null || _servicePseudonym is not null)
        {
            throw new InvalidOperationException("Only a prepared generation can be bound to a service, and only once.");
        }

        _servicePseudonym = servicePseudonym;
        return Task.CompletedTask;
    }

    public async Task<GenerationChunk?> ReadOwnedAsync(GenerationOwner owner, int fromIndex, int max, CancellationToken cancellationToken = default)
    {
        // An activation made by this very call knows no owner: the id is unknown, or its worker died (Lost, retryable).
        return _prepared is null || IsOwnedBy(owner) ? await ReadAsync(fromIndex, max, cancellationToken) : null;
    }

    public Task<bool> CancelOwnedAsync(GenerationOwner owner)
    {
        if (!IsOwnedBy(owner))
        {
            if (_prepared is null)
            {
                DeactivateOnIdle();
            }

            return Task.FromResult(false);
        }

        _cancellation.Cancel();
        return Task.FromResult(true);
    }

    private bool IsOwnedBy(GenerationOwner owner) =>
        _prepared is { Owner: var user } && _servicePseudonym is { } service
        && string.Equals(user, owner.UserPseudonym, StringComparison.Ordinal)
        && string.Equals(service, owner.ServicePseudonym, StringComparison.Ordinal);

    private async Task<GenerationResult> RunAsync(string ownerPseudonym, PreparedGeneration prepared)
    {
        using var running = drain.Register(this, StopBySilo);
        try
        {
            _reserved = false;
            var result = await DecodeAsync(ownerPseudonym, prepared);
            await RecordAsync(ownerPseudonym, prepared, result.Usage, result.FinishReason);
            if (result.OutputGuardHits is { Length: > 0 } hits)
            {
                await RecordGuardAsync(ownerPseudonym, prepared, hits, result.FinishReason == FinishReasons.ContentFilter);
            }
            try
            {
                await SettleAsync(ownerPseudonym, result.Usage);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogSettleFailed(logger, exception, ownerPseudonym);
                throw;
            }

            if (_stoppedBySilo && result.FinishReason == FinishReasons.Cancelled)
            {
                // The usage produced so far is settled above; the caller gets a retryable error, not a cut-off answer.
                throw Unavailable("The worker stopped before the generation finished; retry.");
            }

            _buffer.Complete(result);
            return result;
        }
        catch (Exception exception)
        {
            _buffer.Fail(_stoppedBySilo && exception is OperationCanceledException ? Unavailable("The worker stopped before the generation started; retry.") : exception);
            throw;
        }
    }

    /// <summary>
    /// Runs the input guard on the tokenized request. Its hits are audited (check and rule names, never the text) before
    /// a blocked request is refused, so an attacker's probing leaves a trace even though nothing is charged.
    /// </summary>
    private async Task GuardInputAsync(string ownerPseudonym, string[] ownerRoles, GenerationRequest request, PreparedGeneration prepared)
    {
        var hits = inputGuard.Check(ownerRoles, request, prepared.PromptTokens.Length);
        if (hits.Count == 0)
        {
            return;
        }

        var blocked = hits.Where(hit => hit.Mode == InputGuardMode.Block).ToList();
        var detail = hits.ToDictionary(hit => hit.Check, hit => string.Join(",", hit.Rules), StringComparer.Ordinal);
        detail["model"] = prepared.Model;
        detail["prompt_tokens"] = prepared.PromptTokens.Length.ToString(CultureInfo.InvariantCulture);
        await EnqueueAuditAsync(new AuditRecord(time.GetUtcNow(), "guard.input", ownerPseudonym, null, blocked.Count > 0 ? "blocked" : "flagged", detail));

        if (blocked.Count > 0)
        {
            throw new GenerationRejectedException(GenerationRejectedException.InputRejected, blocked[0].Check == InputGuardOptions.PromptCap
                ? $"The prompt has {prepared.PromptTokens.Length} tokens; requests of your role may have at most {inputGuard.PromptTokenCap(ownerRoles)}."
                : $"The input guard refused the prompt ({string.Join(", ", blocked.Select(hit => hit.Check))}).");
        }
    }

    /// <summary>
    /// One metadata record per inference in the audit trail: who, which model, how many tokens, how it ended; never the
    /// prompt or the completion. Queued, not awaited to durability: a crash may lose the last few.
    /// </summary>
    private async Task RecordAsync(string ownerPseudonym, PreparedGeneration prepared, TokenUsage usage, string outcome)
    {
        var detail = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["model"] = prepared.Model,
            ["prompt_tokens"] = usage.PromptTokens.ToString(CultureInfo.InvariantCulture),
            ["completion_tokens"] = usage.CompletionTokens.ToString(CultureInfo.InvariantCulture),
        };
        if (_servicePseudonym is { } service)
        {
            detail["service"] = service;
        }

        await EnqueueAuditAsync(new AuditRecord(time.GetUtcNow(), "inference", ownerPseudonym, null, outcome, detail));
    }

    /// <summary>
    /// One record per generation the output guard changed: the rules and how often each matched, never the text.
    /// </summary>
    private async Task RecordGuardAsync(string ownerPseudonym, PreparedGeneration prepared, GuardHit[] hits, bool blocked)
    {
        var detail = new Dictionary<string, string>(StringComparer.Ordinal) { ["model"] = prepared.Model };
        foreach (var hit in hits)
        {
            detail[hit.Rule] = hit.Count.ToString(CultureInfo.InvariantCulture);
        }

        await EnqueueAuditAsync(new AuditRecord(time.GetUtcNow(), "guard.output", ownerPseudonym, null, blocked ? "blocked" : "redacted", detail));
    }

    /// <summary>Queues a record of this generation; a silo past stopping its audit trail (only a generation that outlived the drain gets there) logs that it could not.</summary>
    private async Task EnqueueAuditAsync(AuditRecord record)
    {
        try
        {
            await audit.EnqueueAsync(record);
        }
        catch (AuditUnavailableException)
        {
            LogNotAudited(logger, record.Actor ?? "unknown");
        }
    }

    /// <summary>
    /// Decodes in the model's batching engine, renewing the user's concurrency lease only while decoding lasts. A
    /// generation the engine fails settles as using nothing, so its lease is freed now, not a lease duration later.
    /// </summary>
    private async Task<GenerationResult> DecodeAsync(string ownerPseudonym, PreparedGeneration prepared)
    {
        try
        {
            var decoding = models.Engine(prepared.Model).Enqueue(ownerPseudonym, prepared, _buffer, _cancellation.Token);
            _ = LeaseRenewal.RenewWhileRunningAsync(
                decoding,
                limitOptions.Value.LeaseDuration,
                () => GrainFactory.GetGrain<IUserGrain>(ownerPseudonym).RenewLeaseAsync(this.GetPrimaryKey()),
                () =>
                {
                    LogLeaseLost(logger, ownerPseudonym);
                    StopBySilo();
                },
                time);
            return await decoding;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            await RecordAsync(ownerPseudonym, prepared, new TokenUsage(0, 0), "failed");
            try
            {
                await SettleAsync(ownerPseudonym, new TokenUsage(0, 0));
            }
            catch (Exception settling) when (settling is not OperationCanceledException)
            {
                LogSettleFailed(logger, settling, ownerPseudonym);
            }

            throw;
        }
    }

    /// <summary>
    /// Settles the usage with the user's grain. A generation that finished on this live worker is not failed because
    /// the silo holding the user's grain died meanwhile: the call is retried until the grain has reactivated on a
    /// survivor. A retry after a reply lost in the kill counts once: the user's grain remembers the generations it
    /// settled last (<see cref="Limits.Admission.SettledMemory"/>).
    /// </summary>
    private async Task SettleAsync(string ownerPseudonym, TokenUsage usage)
    {
        var started = time.GetTimestamp();
        while (true)
        {
            try
            {
                await GrainFactory.GetGrain<IUserGrain>(ownerPseudonym).SettleAsync(this.GetPrimaryKey(), usage);
                return;
            }
            catch (Exception exception) when (IsSiloFailure(exception) && time.GetElapsedTime(started) < SettleRetryWindow)
            {
                LogSettleRetried(logger, ownerPseudonym);
                await Task.Delay(SettleRetryDelay, time);
            }
        }
    }

    /// <summary>
    /// The user's grain is unreachable because its silo died or stopped (it reactivates on another), or, while the
    /// cluster settles after a death, a second activation of it lost a state write to the first (Orleans drops that
    /// activation; the next call reaches one that has read the stored state).
    /// </summary>
    private static bool IsSiloFailure(Exception exception) =>
        exception is OrleansMessageRejectionException or TimeoutException or Orleans.Runtime.Messaging.ConnectionFailedException
            or Orleans.Storage.InconsistentStateException;

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        ReleaseReservation();
        StopBySilo();
        if (_run is { IsCompleted: false } run)
        {
            // The run settles its usage, which frees the user's concurrency lease, through this activation: once the
            // activation is gone that call cannot be made, and the lease would stay taken until it expires. So the
            // deactivation (a reader that went away, idle collection) waits for the stopped run, within its own time.
            try
            {
                await run.WaitAsync(cancellationToken);
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                // The run reports its own failures; a run still going when the deactivation's time is up leaves the lease to expire.
            }
        }

        _cancellation.Dispose();
    }

    /// <summary>Ends the generation at the next decode step, reported to the reader as retryable.</summary>
    private void StopBySilo()
    {
        _stoppedBySilo = true;
        try
        {
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already deactivated: nothing left to stop.
        }
    }

    private static GenerationRejectedException Unavailable(string message) => new(GenerationRejectedException.WorkerUnavailable, message);

    private static GenerationRejectedException Lost() => Unavailable("The worker running this generation stopped; retry.");

    private void ReleaseReservation()
    {
        if (_reserved && _prepared is { } prepared)
        {
            _reserved = false;
            models.Engine(prepared.Prepared.Model).Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Settling usage for user {Pseudonym} failed while the cluster recovers from a silo failure; retrying")]
    private static partial void LogSettleRetried(ILogger logger, string pseudonym);

    [LoggerMessage(Level = LogLevel.Warning, Message = "An inference record of {Pseudonym} was not audited: the audit trail had stopped")]
    private static partial void LogNotAudited(ILogger logger, string pseudonym);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A generation of user {Pseudonym} lost its concurrency lease (settled elsewhere, or not renewed for a lease duration); it stops")]
    private static partial void LogLeaseLost(ILogger logger, string pseudonym);

    [LoggerMessage(Level = LogLevel.Error, Message = "Settling usage for user {Pseudonym} failed")]
    private static partial void LogSettleFailed(ILogger logger, Exception exception, string pseudonym);
}
