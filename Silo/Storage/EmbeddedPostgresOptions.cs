namespace Bastion.Storage;

/// <summary>How <see cref="EmbeddedPostgres"/> runs its private server.</summary>
public sealed record EmbeddedPostgresOptions
{
    /// <summary>
    /// Turns off fsync, full-page writes and synchronous commit (and skips initdb's sync). Only for
    /// throw-away test clusters: a crash can corrupt the data.
    /// </summary>
    public bool DisableDurability { get; init; }

    /// <summary>
    /// Serve TLS (<c>ssl=on</c>) with this certificate; the server's own connection strings then use
    /// <c>SSL Mode=VerifyFull</c> against <see cref="EmbeddedPostgresTls.CaFile"/>. Null: no TLS, as a
    /// loopback-only development server needs none.
    /// </summary>
    public EmbeddedPostgresTls? Tls { get; init; }
}

/// <summary>PEM files for an embedded server's TLS: its certificate (valid for 127.0.0.1), its key, and the CA that signed it.</summary>
public sealed record EmbeddedPostgresTls(string CertificateFile, string KeyFile, string CaFile);
