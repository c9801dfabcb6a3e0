using Orleans.Concurrency;

namespace Bastion.Generation;

/// <summary>
/// One generation, keyed by a fresh id per request and activated on a worker silo. It runs the
/// model outside the caller's turn; the API silo reads the result from it.
/// </summary>
[Alias("bastion.generation")]
public interface IGenerationGrain : IGrainWithGuidKey
{
    /// <summary>
    /// Checks and tokenizes the request for the user with the given pseudonym and roles (the input guard's policy
    /// follows the roles), without running it yet, and returns the tokens the user grain reserves: the prompt's tokens
    /// plus the most it may generate (<c>max_tokens</c>, or the model's default when the request leaves it out). Throws
    /// <see cref="GenerationRejectedException"/> when the request cannot be served or the input guard refuses it.
    /// </summary>
    [Alias("prepare")]
    Task<int> PrepareAsync(string ownerPseudonym, string[] ownerRoles, GenerationRequest request);

    /// <summary>Starts the prepared generation; returns once it has started.</summary>
    [Alias("start")]
    Task StartAsync();

    /// <summary>Drops a prepared generation that was not admitted.</summary>
    [Alias("abandon")]
    Task AbandonAsync();

    /// <summary>Stops the generation at its next decode step (the user was suspended or their tokens revoked).</summary>
    /// <remarks>Interleaves with the pending <see cref="GetResultAsync"/>, which holds the activation until the run ends.</remarks>
    [Alias("cancel"), AlwaysInterleave]
    Task CancelAsync();

    /// <summary>
    /// Waits until text pieces from <paramref name="fromIndex"/> on exist or the generation has ended, and
    /// returns up to <paramref name="max"/> of them. Asking from an index acknowledges every piece before it:
    /// the run pauses while too many pieces are unacknowledged, so a slow reader holds back decoding.
    /// </summary>
    [Alias("read"), AlwaysInterleave]
    Task<GenerationChunk> ReadAsync(int fromIndex, int max, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records the service that started this prepared generation through the gateway, once: from then on the gateway
    /// serves it only to a caller that is <see cref="GenerationOwner"/> of it. A generation started over HTTP has no
    /// service and is never served through the gateway.
    /// </summary>
    /// <exception cref="InvalidOperationException">The generation was not prepared here, or a service is already recorded.</exception>
    [Alias("bind-service")]
    Task BindServiceAsync(string servicePseudonym);

    /// <summary>
    /// <see cref="ReadAsync"/> for the gateway: returns <see langword="null"/> without reading when <paramref name="owner"/>
    /// is not exactly the user and service recorded for this generation (or none is: an unknown id, or a generation
    /// started over HTTP).
    /// </summary>
    [Alias("read-owned"), AlwaysInterleave]
    Task<GenerationChunk?> ReadOwnedAsync(GenerationOwner owner, int fromIndex, int max, CancellationToken cancellationToken = default);

    /// <summary><see cref="CancelAsync"/> for the gateway: false, and nothing cancelled, unless <paramref name="owner"/> owns this generation.</summary>
    [Alias("cancel-owned"), AlwaysInterleave]
    Task<bool> CancelOwnedAsync(GenerationOwner owner);

    /// <summary>Waits for the generation to finish and returns its result.</summary>
    [Alias("get-result")]
    Task<GenerationResult> GetResultAsync(CancellationToken cancellationToken = default);
}
