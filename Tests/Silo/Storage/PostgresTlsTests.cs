using System.Collections.Concurrent;
using System.Runtime.Versioning;
using Bastion.Hosting;
using Bastion.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Bastion.Tests.Silo.Storage;

/// <summary>
/// TLS to PostgreSQL: a server with a CA-signed certificate (its own embedded server, <c>ssl=on</c>);
/// the silo's start-up path with <c>SSL Mode=VerifyFull</c> against the right CA, against another CA,
/// and without verification (refused outside Development).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class PostgresTlsTests : IAsyncLifetime
{
    private readonly string _directory = Path.Combine("/tmp", $"bastion-tls-tests-{Guid.NewGuid():N}");
    private EmbeddedPostgres? _server;
    private string _otherCaFile = "";
    private string _state = "";
    private string _keyStore = "";

    public async Task InitializeAsync()
    {
        var tls = TestPostgresTls.Create(Path.Combine(_directory, "server-ca"));
        _otherCaFile = TestPostgresTls.Create(Path.Combine(_directory, "other-ca")).CaFile;
        _server = await EmbeddedPostgres.StartAsync(
            Path.Combine(_directory, "postgres"), new EmbeddedPostgresOptions { DisableDurability = true, Tls = tls }, NullLogger.Instance, CancellationToken.None);

        // The migrate path takes the owners' connection strings as they are: VerifyFull against the CA.
        var (owner, state) = await _server.CreateDatabaseAsync("state");
        var (keyStoreOwner, keyStore) = await _server.CreateKeyStoreDatabaseAsync("keys");
        Assert.Equal(SslMode.VerifyFull, new NpgsqlConnectionStringBuilder(owner).SslMode);
        await SchemaMigrator.MigrateAsync(SchemaMigrationSet.State, owner, EmbeddedPostgres.RuntimeRole, CancellationToken.None);
        await SchemaMigrator.MigrateAsync(SchemaMigrationSet.KeyStore, keyStoreOwner, EmbeddedPostgres.KeyStoreRuntimeRole, CancellationToken.None);
        (_state, _keyStore) = (state, keyStore);
    }

    [Fact]
    public async Task Open_VerifyFullAgainstTheServersCa_IsAcceptedOutsideDevelopment_AndConnectsOverTls()
    {
        var log = new ConcurrentQueue<string>();

        await using var database = await OpenAsync(_state, _keyStore, isDevelopment: false, log);

        Assert.Empty(log);
        foreach (var connectionString in new[] { database.RuntimeConnectionString, database.KeyStoreConnectionString })
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", connection);
            Assert.True((bool)(await command.ExecuteScalarAsync())!);
        }
    }

    [Theory]
    [InlineData(DatabaseOptions.RuntimeConnectionStringName)]
    [InlineData(DatabaseOptions.KeyStoreConnectionStringName)]
    public async Task Open_VerifyFullAgainstAnotherCa_IsRefused_NamingTheSettingAndNoSecret(string setting)
    {
        var state = setting == DatabaseOptions.RuntimeConnectionStringName ? WithRootCertificate(_state, _otherCaFile) : _state;
        var keyStore = setting == DatabaseOptions.KeyStoreConnectionStringName ? WithRootCertificate(_keyStore, _otherCaFile) : _keyStore;

        var refused = await Assert.ThrowsAsync<StartupException>(() => OpenAsync(state, keyStore, isDevelopment: false, new ConcurrentQueue<string>()));

        Assert.Contains($"ConnectionStrings:{setting}:", refused.Message, StringComparison.Ordinal);
        Assert.Contains("TLS certificate was not accepted", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new NpgsqlConnectionStringBuilder(state).Password!, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new NpgsqlConnectionStringBuilder(keyStore).Password!, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(DatabaseOptions.RuntimeConnectionStringName, SslMode.Disable)]
    [InlineData(DatabaseOptions.RuntimeConnectionStringName, SslMode.Prefer)]
    [InlineData(DatabaseOptions.RuntimeConnectionStringName, SslMode.Require)]
    [InlineData(DatabaseOptions.RuntimeConnectionStringName, SslMode.VerifyCA)]
    [InlineData(DatabaseOptions.KeyStoreConnectionStringName, SslMode.Disable)]
    [InlineData(DatabaseOptions.KeyStoreConnectionStringName, SslMode.Allow)]
    [InlineData(DatabaseOptions.KeyStoreConnectionStringName, SslMode.Require)]
    [InlineData(DatabaseOptions.KeyStoreConnectionStringName, SslMode.VerifyCA)]
    public async Task Open_OutsideDevelopmentWithoutVerifyFull_IsRefused_NamingTheSettingAndNoSecret(string setting, SslMode mode)
    {
        var state = setting == DatabaseOptions.RuntimeConnectionStringName ? WithSslMode(_state, mode) : _state;
        var keyStore = setting == DatabaseOptions.KeyStoreConnectionStringName ? WithSslMode(_keyStore, mode) : _keyStore;
        var warnings = new ConcurrentQueue<string>();

        var refused = await Assert.ThrowsAsync<StartupException>(() => OpenAsync(state, keyStore, isDevelopment: false, warnings));

        Assert.StartsWith($"ConnectionStrings:{setting} has SSL Mode={mode};", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Set SSL Mode=VerifyFull", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new NpgsqlConnectionStringBuilder(state).Password!, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new NpgsqlConnectionStringBuilder(keyStore).Password!, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_InDevelopmentWithoutServerVerification_IsAccepted()
    {
        await using var database = await OpenAsync(WithSslMode(_state, SslMode.Require), WithSslMode(_keyStore, SslMode.Disable), isDevelopment: true, new ConcurrentQueue<string>());

        Assert.Equal(SslMode.Disable, new NpgsqlConnectionStringBuilder(database.KeyStoreConnectionString).SslMode);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static string WithSslMode(string connectionString, SslMode mode)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { SslMode = mode };
        if (mode != SslMode.VerifyCA)
        {
            builder.RootCertificate = null;
        }

        return builder.ConnectionString;
    }

    private static string WithRootCertificate(string connectionString, string caFile) =>
        new NpgsqlConnectionStringBuilder(connectionString) { RootCertificate = caFile }.ConnectionString;

    private static Task<BastionDatabase> OpenAsync(string state, string keyStore, bool isDevelopment, ConcurrentQueue<string> warnings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Bastion"] = state,
            ["ConnectionStrings:BastionKeys"] = keyStore,
        }).Build();
        return BastionDatabase.OpenAsync(configuration, isDevelopment, "/nonexistent", new WarningLogger(warnings), CancellationToken.None);
    }

    private sealed class WarningLogger(ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                lines.Enqueue(formatter(state, exception));
            }
        }
    }
}
