using Orleans.Concurrency;

namespace Bastion.Generation;

/// <summary>
/// One generation, keyed by a fresh id per request and activated on a worker silo. It runs the
/// model outside the caller's turn; the API silo reads the result from it.
/// </summary>
[Alias("bastion.generation")]
public interface IGenerationGrain : IGrainWithGuidKey
{
    /// <summary>Starts generating for the user with the given pseudonym; returns once it has started.</summary>
    [Alias("start")]
    Task StartAsync(string ownerPseudonym, GenerationRequest request);

    /// <summary>Stops the generation at its next decode step (the user was suspended or their tokens revoked).</summary>
    /// <remarks>Interleaves with the pending <see cref="GetResultAsync"/>, which holds the activation until the run ends.</remarks>
    [Alias("cancel"), AlwaysInterleave]
    Task CancelAsync();

    /// <summary>Waits for the generation to finish and returns its result.</summary>
    [Alias("get-result")]
    Task<GenerationResult> GetResultAsync(CancellationToken cancellationToken = default);
}
