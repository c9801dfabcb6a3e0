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
public sealed partial class BootstrapAdmin(
    IGrainFactory grains,
    Pseudonymizer pseudonyms,
    ApiKeys apiKeys,
    IOptions<BootstrapOptions> options,
    TimeProvider time,
    ILogger<BootstrapAdmin> logger,
    string defaultKeyFile) : IHostedService
{
    public string KeyFile => options.Value.KeyFile ?? defaultKeyFile;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        var (keyId, apiKey, hash, version) = apiKeys.Generate();
        var now = time.GetUtcNow();
        var pending = KeyFile + ".pending";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(KeyFile))!);
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using (var writer = new StreamWriter(new FileStream(pending, fileOptions)))
        {
            await writer.WriteLineAsync(apiKey.AsMemory(), cancellationToken);
        }

        var key = new NewApiKey(keyId, hash, version, "bootstrap", now, now.Add(options.Value.KeyLifetime));
        if (await EnsureAdminAsync(key, cancellationToken))
        {
            File.Move(pending, KeyFile, overwrite: true);
            LogCreated(logger, KeyFile);
        }
        else
        {
            File.Delete(pending);
        }
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
}
