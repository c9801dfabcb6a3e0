using Bastion.Security;
using Bastion.Users;
using Microsoft.Extensions.Options;
using Orleans.Storage;

namespace Bastion.Hosting;

/// <summary>
/// Creates the first admin and writes their API key to a file of mode 0600, once per service. The
/// key is written before the grain commits, so a crash in between never leaves an admin whose only
/// key was lost; the creation is audited by the bootstrap grain.
/// </summary>
/// <remarks>
/// Once the bootstrap is done, a start writes nothing. Until then the key goes into a new
/// <c>.pending</c> file, created exclusively (nothing already at that path, a symbolic link included,
/// is ever opened or written through), then renamed over the key file: a reader sees the old file or
/// the whole new one, and a rename replaces a link, never its target. A link or anything else
/// unexpected at either path stops start-up instead.
/// </remarks>
public sealed partial class BootstrapAdmin(
    IGrainFactory grains,
    Pseudonymizer pseudonyms,
    ApiKeys apiKeys,
    IOptions<BootstrapOptions> options,
    TimeProvider time,
    ILogger<BootstrapAdmin> logger,
    string defaultKeyFile) : IHostedService
{
    private const string KeyFileSetting = BootstrapOptions.SectionName + ":KeyFile";

    public string KeyFile => options.Value.KeyFile ?? defaultKeyFile;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        var keyFile = Path.GetFullPath(KeyFile);
        var pending = keyFile + ".pending";

        // A restart writes nothing: no key that would be thrown away, and no .pending file to collide
        // with a silo starting beside it from the same data directory.
        if (await grains.GetGrain<IBootstrapGrain>(IBootstrapGrain.Key).IsCompletedAsync())
        {
            if (Path.Exists(pending))
            {
                LogLeftoverPending(logger, pending);
            }

            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(keyFile)!);
        RefuseUnexpectedEntry(keyFile, regularFileExpected: true);
        RefuseUnexpectedEntry(pending, regularFileExpected: false);

        var (keyId, apiKey, hash, version) = apiKeys.Generate();
        var now = time.GetUtcNow();
        await WriteNewAsync(pending, apiKey, cancellationToken);
        var key = new NewApiKey(keyId, hash, version, "bootstrap", now, now.Add(options.Value.KeyLifetime));
        if (await EnsureAdminAsync(key, cancellationToken))
        {
            File.Move(pending, keyFile, overwrite: true);
            LogCreated(logger, keyFile);
        }
        else
        {
            File.Delete(pending);
        }
    }

    /// <summary>
    /// Refuses a symbolic link (dangling or not) or a directory at <paramref name="path"/>, and any
    /// entry at all unless <paramref name="regularFileExpected"/> (the key file of an earlier start).
    /// </summary>
    private static void RefuseUnexpectedEntry(string path, bool regularFileExpected)
    {
        var entry = new FileInfo(path);
        if (entry.LinkTarget is not null)
        {
            throw new StartupException(
                $"{KeyFileSetting}: {path} is a symbolic link; the bootstrap admin's key is never written through one. Remove the link or choose another path.");
        }

        if (Directory.Exists(path) || (entry.Exists && !regularFileExpected))
        {
            throw new StartupException(
                $"{KeyFileSetting}: {path} already exists and is not a file Bastion may replace. A start-up interrupted " +
                "before the bootstrap admin was created leaves a .pending file behind: remove it and start again.");
        }
    }

    private static async Task WriteNewAsync(string path, string apiKey, CancellationToken cancellationToken)
    {
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        FileStream stream;
        try
        {
            stream = new FileStream(path, fileOptions);
        }
        catch (IOException exception) when (Path.Exists(path) || new FileInfo(path).LinkTarget is not null)
        {
            // Something appeared between the check and the exclusive create: still never written through.
            throw new StartupException($"{KeyFileSetting}: {path} appeared while the bootstrap key was being written; nothing was written to it.", exception);
        }

        await using var writer = new StreamWriter(stream);
        await writer.WriteLineAsync(apiKey.AsMemory(), cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // Silos starting together on a fresh database can each activate a grain of the bootstrap before their
    // membership views agree; the state write of all but one then fails its ETag check, and Orleans drops
    // that activation. Asking again reaches the surviving activation, which answers from the stored state.
    private async Task<bool> EnsureAdminAsync(NewApiKey key, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await grains.GetGrain<IBootstrapGrain>(IBootstrapGrain.Key).EnsureAdminAsync(options.Value.AdminId, pseudonyms.Pseudonymize(options.Value.AdminId), key);
            }
            catch (InconsistentStateException) when (attempt < 5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), time, cancellationToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Bootstrap admin API key written to {KeyFile}")]
    private static partial void LogCreated(ILogger logger, string keyFile);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Pending} was left by a start-up interrupted after the bootstrap admin was created: it may hold their only API key")]
    private static partial void LogLeftoverPending(ILogger logger, string pending);
}
