namespace Bastion.Cluster;

/// <summary>One KEK version as the cluster sees it (the facade's form of <c>GET /admin/keys</c>).</summary>
/// <param name="Version">The version number (the <c>bastion-version</c> tag in Key Vault).</param>
/// <param name="Current">Whether new data keys are wrapped with it.</param>
/// <param name="Available">Whether the key provider has its key (false: data keys name a version the provider lacks).</param>
/// <param name="DataKeys">How many live data keys it wraps.</param>
[GenerateSerializer, Immutable, Alias("bastion.kek-version")]
public sealed record KekVersionInfo(
    [property: Id(0)] int Version,
    [property: Id(1)] bool Current,
    [property: Id(2)] bool Available,
    [property: Id(3)] long DataKeys);

/// <summary>Where a KEK re-wrap run is.</summary>
public enum KekRewrapState
{
    /// <summary>No run on the answering silo since it started.</summary>
    Idle = 0,

    /// <summary>A run is moving data keys.</summary>
    Running = 1,

    /// <summary>The last run finished.</summary>
    Done = 2,

    /// <summary>The last run stopped; <see cref="KekRewrapStatus.Error"/> says why.</summary>
    Failed = 3,
}

/// <summary>
/// Re-wrap progress, the same figures as <c>GET /admin/keys/rewrap</c>: <paramref name="Total"/> and <paramref name="Done"/>
/// are the answering silo's run; <paramref name="Remaining"/> is counted in the database (data keys on versions below the
/// current one), so it is the cluster's truth whichever silo answers.
/// </summary>
/// <param name="State">The answering silo's run.</param>
/// <param name="CurrentKekVersion">The version data keys are re-wrapped to.</param>
/// <param name="Total">Data keys on older versions when the run began.</param>
/// <param name="Done">Data keys the run has moved.</param>
/// <param name="Remaining">Live data keys still on older versions.</param>
/// <param name="StartedAt">When the run began.</param>
/// <param name="FinishedAt">When it finished or failed.</param>
/// <param name="Error">Why it failed (names data key ids and versions, never key material).</param>
[GenerateSerializer, Immutable, Alias("bastion.kek-rewrap-status")]
public sealed record KekRewrapStatus(
    [property: Id(0)] KekRewrapState State,
    [property: Id(1)] int CurrentKekVersion,
    [property: Id(2)] long Total,
    [property: Id(3)] long Done,
    [property: Id(4)] long Remaining,
    [property: Id(5)] DateTimeOffset? StartedAt,
    [property: Id(6)] DateTimeOffset? FinishedAt,
    [property: Id(7)] string? Error);

/// <summary>The answer to starting a re-wrap.</summary>
/// <param name="Started">False when a run was already running on the answering silo (then <paramref name="Status"/> is that run).</param>
/// <param name="Status">The progress right after the call.</param>
[GenerateSerializer, Immutable, Alias("bastion.kek-rewrap-start")]
public sealed record KekRewrapStart(
    [property: Id(0)] bool Started,
    [property: Id(1)] KekRewrapStatus Status);

/// <summary>What retiring a KEK version did.</summary>
public enum KekRetireResult
{
    /// <summary>Retired: the development keyring deleted its key.</summary>
    Retired = 0,

    /// <summary>No live data key uses it, but the keys live in Key Vault: disable that version there (<c>bastion keys kek retire N --vault-uri …</c>).</summary>
    Unused = 1,

    /// <summary>Refused: it is the current version.</summary>
    Current = 2,

    /// <summary>Refused: live data keys are still wrapped with it (<see cref="KekRetirement.DataKeys"/>); re-wrap first.</summary>
    InUse = 3,

    /// <summary>The provider has no such version (never existed, or already retired).</summary>
    NotFound = 4,
}

/// <summary>The outcome of retiring a KEK version.</summary>
/// <param name="Version">The version asked about.</param>
/// <param name="Result">What happened.</param>
/// <param name="DataKeys">With <see cref="KekRetireResult.InUse"/>, how many live data keys it still wraps.</param>
[GenerateSerializer, Immutable, Alias("bastion.kek-retirement")]
public sealed record KekRetirement(
    [property: Id(0)] int Version,
    [property: Id(1)] KekRetireResult Result,
    [property: Id(2)] long DataKeys);
