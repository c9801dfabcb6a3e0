using System.Runtime.CompilerServices;
using Bastion.Cluster;
using Bastion.Generation;
using Bastion.Limits;
using Bastion.Users;
using Orleans.Runtime.Messaging;
using Polly;

namespace Bastion.Client;

/// <summary>
/// A backend service's typed access to a Bastion cluster, through the <see cref="IServiceGateway"/> facade. Every call
/// carries a fresh service token; calls that are safe to repeat are retried on transient failures (a silo gone, a
/// timeout, a lost connection) with exponential backoff, and state-changing admin calls carry an idempotency key so a
/// retry never applies twice. Refusals surface as <see cref="ServiceRefusedException"/>; a request the worker cannot
/// serve as <see cref="GenerationRejectedException"/>.
/// </summary>
public sealed class BastionClient
{
    /// <summary>How many text pieces one read asks for.</summary>
    private const int PiecesPerRead = 64;

    private readonly IClusterClient _cluster;
    private readonly ServiceTokenIssuer _tokens;
    private readonly ResiliencePipeline _retrying;
    private readonly ResiliencePipeline _once;

    /// <summary>Creates the client; <c>AddBastionClient</c> registers one, so applications take it from dependency injection.</summary>
    public BastionClient(IClusterClient cluster, ServiceTokenIssuer tokens, BastionClientOptions options)
    {
        _cluster = cluster;
        _tokens = tokens;
        _retrying = new ResiliencePipelineBuilder()
            .AddTimeout(options.Deadline)
            .AddRetry(new Polly.Retry.RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                MaxRetryAttempts = Math.Max(options.MaxRetries, 1),
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .Build();
        if (options.MaxRetries == 0)
        {
            _retrying = new ResiliencePipelineBuilder().AddTimeout(options.Deadline).Build();
        }

        _once = new ResiliencePipelineBuilder().AddTimeout(options.Deadline).Build();
    }

    /// <summary>Whether an exception is a transient failure worth retrying: the call may not have reached a silo, or its answer was lost.</summary>
    public static bool IsTransient(Exception exception) => exception is SiloUnavailableException or TimeoutException
        or OrleansMessageRejectionException or ConnectionFailedException or GatewayTooBusyException;

    /// <summary>
    /// Generates a completion and returns it whole. Without <paramref name="onBehalfOf"/> the service's own roles and limits
    /// apply; with it, the service needs the <c>service</c> role and that user's roles and limits apply. Starting a
    /// generation counts against limits, so it is not retried; reading its result is.
    /// </summary>
    public async Task<GenerationResult> CompleteAsync(GenerationRequest request, string? onBehalfOf = null, CancellationToken cancellationToken = default)
    {
        var generation = await StartAsync(request, onBehalfOf, cancellationToken);
        var index = 0;
        try
        {
            while (true)
            {
                var chunk = await ReadAsync(generation, index, onBehalfOf, cancellationToken);
                index += chunk.Pieces.Count;
                if (chunk.Result is { } result)
                {
                    return result;
                }
            }
        }
        catch
        {
            // A read that failed (retries spent, cancelled) leaves nobody reading: stop the generation so it frees its
            // batch slot and the user's concurrency lease now.
            await CancelQuietlyAsync(generation, onBehalfOf).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Generates a completion and yields its text as it is decoded. Reads go through the generation's bounded buffer in
    /// batches (never an <see cref="IAsyncEnumerable{T}"/> across grains); a reader that stops early cancels the generation.
    /// </summary>
    public async IAsyncEnumerable<string> StreamAsync(
        GenerationRequest request, string? onBehalfOf = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var generation = await StartAsync(request, onBehalfOf, cancellationToken);
        var index = 0;
        var finished = false;
        try
        {
            while (!finished)
            {
                var chunk = await ReadAsync(generation, index, onBehalfOf, cancellationToken);
                index += chunk.Pieces.Count;
                finished = chunk.Finished;
                foreach (var piece in chunk.Pieces)
                {
                    yield return piece;
                }
            }
        }
        finally
        {
            if (!finished)
            {
                // The reader stopped early or a read failed: the generation would otherwise hold its slot until the
                // worker's set-aside timeout.
                await CancelQuietlyAsync(generation, onBehalfOf).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A user's roles, API keys (never their secrets), usage and suspension; null when there is no such user. Needs the <c>admin</c> role.</summary>
    public Task<UserProfile?> GetUserAsync(string userId, CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.GetUserAsync(userId), cancellationToken);

    /// <summary>Creates a user with the given roles. Retried safely: a repeat carries the same idempotency key. Needs the <c>admin</c> role.</summary>
    public Task CreateUserAsync(string userId, IReadOnlyList<string> roles, CancellationToken cancellationToken = default)
    {
        var key = NewIdempotencyKey();
        return CallAsync(_retrying, null, gateway => gateway.CreateUserAsync(userId, roles, key), cancellationToken);
    }

    /// <summary>Issues an API key for a user; the returned key is shown only here. Retried safely (the same key comes back). Needs the <c>admin</c> role.</summary>
    public Task<IssuedApiKey> IssueApiKeyAsync(string userId, string label, int? expiresInDays = null, CancellationToken cancellationToken = default)
    {
        var key = NewIdempotencyKey();
        return CallAsync(_retrying, null, gateway => gateway.IssueApiKeyAsync(userId, label, expiresInDays, key), cancellationToken);
    }

    /// <summary>Revokes one API key and every access token exchanged for it. Needs the <c>admin</c> role.</summary>
    public Task RevokeApiKeyAsync(string userId, string keyId, CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.RevokeApiKeyAsync(userId, keyId), cancellationToken);

    /// <summary>Replaces a user's roles (the last admin cannot be demoted). Needs the <c>admin</c> role.</summary>
    public Task SetRolesAsync(string userId, IReadOnlyList<string> roles, CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.SetRolesAsync(userId, roles), cancellationToken);

    /// <summary>Overrides some of a user's limits (unset fields keep earlier overrides) and returns the effective limits. Needs the <c>admin</c> role.</summary>
    public Task<UserLimits> SetLimitsAsync(string userId, UserLimits overrides, CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.SetLimitsAsync(userId, overrides), cancellationToken);

    /// <summary>Suspends a user, cancelling their running generations. Needs the <c>admin</c> role.</summary>
    public Task SuspendAsync(string userId, CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.SetSuspendedAsync(userId, true), cancellationToken);

    /// <summary>Lifts a user's suspension. Needs the <c>admin</c> role.</summary>
    public Task ResumeAsync(string userId, CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.SetSuspendedAsync(userId, false), cancellationToken);

    /// <summary>Invalidates every token issued to a user so far. Retried safely: a repeat carries the same idempotency key. Needs the <c>admin</c> role.</summary>
    public Task RevokeTokensAsync(string userId, CancellationToken cancellationToken = default)
    {
        var key = NewIdempotencyKey();
        return CallAsync(_retrying, null, gateway => gateway.RevokeTokensAsync(userId, key), cancellationToken);
    }

    /// <summary>Each worker silo's batching queue depth and active sequences, as they last reported. Needs the <c>admin</c> role.</summary>
    public Task<IReadOnlyList<WorkerLoad>> GetClusterLoadAsync(CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.GetClusterLoadAsync(), cancellationToken);

    /// <summary>Every KEK version the cluster's key provider has or a data key names, with the live data keys it wraps. Needs the <c>admin</c> role.</summary>
    public Task<IReadOnlyList<KekVersionInfo>> ListKeksAsync(CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.ListKeksAsync(), cancellationToken);

    /// <summary>
    /// Starts re-wrapping every data key on an older KEK version with the current one, in the background on the gateway
    /// silo that answers; follow it with <see cref="GetKekRewrapStatusAsync"/>. Retried safely: a run already going comes
    /// back with <see cref="KekRewrapStart.Started"/> false, and a second run finds nothing to move. Needs the <c>admin</c> role.
    /// </summary>
    public Task<KekRewrapStart> StartKekRewrapAsync(CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.StartKekRewrapAsync(), cancellationToken);

    /// <summary>
    /// Re-wrap progress: state, total and done of the answering silo's run, and the data keys still on older versions
    /// (counted in the database, so right whichever silo answers). Needs the <c>admin</c> role.
    /// </summary>
    public Task<KekRewrapStatus> GetKekRewrapStatusAsync(CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.GetKekRewrapStatusAsync(), cancellationToken);

    /// <summary>
    /// Retires a KEK version; refusals (current, still in use, unknown) come back as <see cref="KekRetirement.Result"/>, not as
    /// exceptions. With Key Vault the answer for a version nothing uses is <see cref="KekRetireResult.Unused"/>: disable the
    /// version in the vault. Retried safely: a retry of a retirement that went through answers
    /// <see cref="KekRetireResult.NotFound"/> (already retired). Needs the <c>admin</c> role.
    /// </summary>
    public Task<KekRetirement> RetireKekAsync(int version, CancellationToken cancellationToken = default) =>
        CallAsync(_retrying, null, gateway => gateway.RetireKekAsync(version), cancellationToken);

    /// <summary>Cancels a generation nobody reads any more. Best effort: a failure here must not hide the one that brought us here.</summary>
    private async Task CancelQuietlyAsync(Guid generation, string? onBehalfOf)
    {
        try
        {
            await CallAsync(_once, onBehalfOf, gateway => gateway.CancelAsync(generation), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception exception) when (IsTransient(exception) || exception is OrleansException or ServiceRefusedException or Polly.Timeout.TimeoutRejectedException)
        {
            // The worker's set-aside timeout and the lease's expiry end the generation regardless.
        }
    }

    private Task<Guid> StartAsync(GenerationRequest request, string? onBehalfOf, CancellationToken cancellationToken) =>
        CallAsync(_once, onBehalfOf, gateway => gateway.StartCompletionAsync(request, onBehalfOf), cancellationToken);

    private Task<GenerationChunk> ReadAsync(Guid generation, int index, string? onBehalfOf, CancellationToken cancellationToken) =>
        CallAsync(_retrying, onBehalfOf, gateway => gateway.ReadAsync(generation, index, PiecesPerRead), cancellationToken);

    private async Task CallAsync(ResiliencePipeline pipeline, string? actingFor, Func<IServiceGateway, Task> call, CancellationToken cancellationToken) =>
        await CallAsync(pipeline, actingFor, async gateway =>
        {
            await call(gateway);
            return true;
        }, cancellationToken);

    private async Task<T> CallAsync<T>(ResiliencePipeline pipeline, string? actingFor, Func<IServiceGateway, Task<T>> call, CancellationToken cancellationToken)
    {
        var gateway = _cluster.GetGrain<IServiceGateway>(0);
        return await pipeline.ExecuteAsync(async token =>
        {
            try
            {
                return await AttemptAsync(gateway, actingFor, call, token);
            }
            catch (ServiceRefusedException refused) when (refused.Reason == ServiceRefusal.NotAuthenticated)
            {
                // A cached token the cluster no longer accepts (the service's tokens were revoked): sign afresh, once.
                _tokens.Reset();
                return await AttemptAsync(gateway, actingFor, call, token);
            }
        }, cancellationToken);
    }

    // The grain call itself is not given the token: cancelling it would send Orleans' cancellation message, which the
    // cluster refuses from clients. The wait stops here instead; the silo finishes or times out on its own.
    private async Task<T> AttemptAsync<T>(IServiceGateway gateway, string? actingFor, Func<IServiceGateway, Task<T>> call, CancellationToken cancellationToken)
    {
        RequestContext.Set(ServiceCallContext.ServiceTokenKey, _tokens.TokenFor(actingFor));
        try
        {
            return await call(gateway).WaitAsync(cancellationToken);
        }
        finally
        {
            RequestContext.Remove(ServiceCallContext.ServiceTokenKey);
        }
    }

    private static string NewIdempotencyKey() => Guid.NewGuid().ToString("N");
}
