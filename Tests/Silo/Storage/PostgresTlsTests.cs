using System.Collections.Concurrent;
using System.Runtime.Versioning;
using Bastion.Hosting;
using Bastion.Security;
using Bastion.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Bastion.Tests.Silo.Storage;

/// <summary>
/// TLS to PostgreSQL: a server with a CA-signed certificate (its own embedded server, <c>ssl=on</c>);
/// the silo's start-up path with <c>SSL Mode=VerifyFull</c> against the right CA, against another CA,
/// and without verification.
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
        var (serverCertificate, caFile) = DevelopmentCertificate.LoadOrCreate(Path.Combine(_directory, "server-ca"), TimeProvider.System);
        serverCertificate.Dispose();
        (var other, _otherCaFile) = DevelopmentCertificate.LoadOrCreate(Path.Combine(_directory, "other-ca"), TimeProvider.System);
        other.Dispose();
        var tls = new EmbeddedPostgresTls(
            Path.Combine(_directory, "server-ca", "server.pem"), Path.Combine(_directory, "server-ca", "server-key.pem"), caFile);
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
    public async Task Open_VerifyFullAgainstTheServersCa_ConnectsOverTls_WithoutAWarning()
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

    [Fact]
    public async Task Open_WithoutServerVerification_WarnsOutsideDevelopmentOnly_NamingEachSetting()
    {
        var unverified = new NpgsqlConnectionStringBuilder(_keyStore) { SslMode = SslMode.Require, RootCertificate = null }.ConnectionString;
        var production = new ConcurrentQueue<string>();
        var development = new ConcurrentQueue<string>();

        await using (await OpenAsync(_state, unverified, isDevelopment: false, production))
        {
        }

        await using (await OpenAsync(_state, unverified, isDevelopment: true, development))
        {
        }

        var warning = Assert.Single(production);
        Assert.Contains("ConnectionStrings:BastionKeys does not verify the PostgreSQL server's certificate", warning, StringComparison.Ordinal);
        Assert.Empty(development);
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
