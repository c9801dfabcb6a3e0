using Bastion.Security;

namespace Bastion.Hosting;

/// <summary>The key provider for a command run outside a silo: the development keyring, or Key Vault read once (no refresh).</summary>
internal sealed class CommandKeys : IAsyncDisposable
{
    private readonly IAsyncDisposable? _owner;

    private CommandKeys(IKeyProvider provider, IAsyncDisposable? owner)
    {
        Provider = provider;
        _owner = owner;
    }

    public IKeyProvider Provider { get; }

    public static async Task<CommandKeys> OpenAsync(IConfiguration configuration, bool isDevelopment, DevelopmentPaths paths, ILoggerFactory loggerFactory)
    {
        var keys = configuration.BindValidated<KeyOptions>(KeyOptions.SectionName);
        if (keys.EffectiveProvider(isDevelopment) != KeyProviderKind.KeyVault)
        {
            var keyring = DevelopmentKeyring.LoadOrCreate(keys.KeyringPath ?? paths.Keyring);
            return new CommandKeys(keyring, new Disposing(keyring));
        }

        var services = new ServiceCollection().AddSingleton(loggerFactory).AddSingleton(typeof(ILogger<>), typeof(Logger<>)).AddSingleton(TimeProvider.System);
        services.AddKeyVaultKeys(keys.KeyVault, isDevelopment);
        var provider = services.BuildServiceProvider();
        await provider.GetRequiredService<KeyVaultKeyProvider>().RefreshAsync(CancellationToken.None);
        return new CommandKeys(provider.GetRequiredService<IKeyProvider>(), provider);
    }

    public async ValueTask DisposeAsync()
    {
        if (_owner is not null)
        {
            await _owner.DisposeAsync();
        }
    }

    private sealed class Disposing(IDisposable inner) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            inner.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
