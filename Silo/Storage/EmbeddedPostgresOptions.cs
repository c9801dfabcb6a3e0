namespace Bastion.Storage;

/// <summary>How <see cref="EmbeddedPostgres"/> runs its private server.</summary>
public sealed record EmbeddedPostgresOptions
{
    /// <summary>
    /// Turns off fsync, full-page writes and synchronous commit (and skips initdb's sync). Only for
    /// throw-away test clusters: a crash can corrupt the data.
    /// </summary>
    public bool DisableDurability { get; init; }
}
