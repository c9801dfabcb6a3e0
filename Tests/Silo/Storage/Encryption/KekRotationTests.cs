using System.Runtime.Versioning;
using System.Text.Json;
using Bastion.Cluster;
using Bastion.Security;
using Bastion.Storage;
using Npgsql;

namespace Bastion.Tests.Silo.Storage.Encryption;

/// <summary>
/// KEK rotation against a real PostgreSQL and a real development keyring file: a new version wraps
/// new keys, old ones keep unwrapping, writes re-wrap lazily, the re-wrap job empties old versions,
/// and a version retires only when nothing uses it.
/// </summary>
[Collection("Postgres")]
[SupportedOSPlatform("linux")]
public sealed class KekRotationTests(PostgresFixture postgres) : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-kek-tests-" + Guid.NewGuid().ToString("N")[..8]);

    private string KeyringPath => Path.Combine(_directory, "keyring.json");

    [Fact]
    public async Task AfterRotation_OldKeysStillUnwrap_NewKeysUseTheNewVersion_AndTheRunningKeyringSeesIt()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var keyring = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var store = new DataKeyStore(db.RuntimeConnectionString, keyring);
        var old = await store.GetCurrentAsync("user:u_old", CancellationToken.None);

        var added = DevelopmentKeyring.AddKek(KeyringPath);
        using var restarted = new DataKeyStore(db.RuntimeConnectionString, keyring);
        var reread = await restarted.FindAsync("user:u_old", old.Id, CancellationToken.None);
        var fresh = await restarted.GetCurrentAsync("user:u_new", CancellationToken.None);

        Assert.Equal(1, old.KekVersion);
        Assert.Equal(2, added);
        Assert.Equal(2, keyring.CurrentKek.Version);
        Assert.Equal([1, 2], keyring.KekVersions);
        Assert.Equal(old.Key, reread.Key);
        Assert.Equal(2, fresh.KekVersion);
        Assert.Equal(2, await KekVersionOfAsync(db, "user:u_new"));
        Assert.Equal(1, await KekVersionOfAsync(db, "user:u_old"));
    }

    [Fact]
    public async Task WritingWithAKeyUnderAnOldVersion_ReWrapsItsRowOnce_EvenFromTwoSilosAtOnce()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var keyring = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var first = new DataKeyStore(db.RuntimeConnectionString, keyring);
        using var otherSilosKeyring = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var second = new DataKeyStore(db.RuntimeConnectionString, otherSilosKeyring);
        var before = await first.GetCurrentAsync("user:u_lazy", CancellationToken.None);
        await second.GetCurrentAsync("user:u_lazy", CancellationToken.None);

        DevelopmentKeyring.AddKek(KeyringPath);
        // What EncryptedGrainStorage.WriteStateAsync asks for on every write, from both silos at once.
        var after = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? first : second).GetCurrentAsync("user:u_lazy", CancellationToken.None)));

        Assert.All(after, key => Assert.Equal(before.Id, key.Id));
        Assert.All(after, key => Assert.Equal(before.Key, key.Key));
        Assert.All(after, key => Assert.Equal(2, key.KekVersion));
        Assert.Equal(2, await KekVersionOfAsync(db, "user:u_lazy"));
        Assert.Equal(1L, (await first.CountByKekVersionAsync(CancellationToken.None))[2]);
    }

    [Fact]
    public async Task EnvelopeSealedBeforeTheReWrap_StillOpens_ItsHeaderKeepsTheVersionItWasSealedUnder()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var keyring = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var store = new DataKeyStore(db.RuntimeConnectionString, keyring);
        var associated = EnvelopeCipher.AssociatedData("bastion.user", "u_env", "user");
        var dataKey = await store.GetCurrentAsync("user:u_env", CancellationToken.None);
        var sealedBefore = EnvelopeCipher.Seal("before"u8, associated, dataKey);

        DevelopmentKeyring.AddKek(KeyringPath);
        await store.RewrapAllAsync(null, CancellationToken.None);
        Assert.Equal(KekRetireResult.Retired, (await new KeyRotation(store, keyring).RetireAsync(1, CancellationToken.None)).Result);
        using var reloaded = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var afterRetire = new DataKeyStore(db.RuntimeConnectionString, reloaded);
        var header = EnvelopeCipher.ReadHeader(sealedBefore);
        var key = await afterRetire.FindAsync("user:u_env", header.DataKeyId, CancellationToken.None);

        Assert.Equal(1, header.KekVersion);
        Assert.Equal(2, key.KekVersion);
        Assert.Equal("before"u8.ToArray(), EnvelopeCipher.Open(sealedBefore, associated, key));
    }

    [Fact]
    public async Task RewrapAll_ReportsProgressToTheEnd_AndLeavesNoKeyOnAnOlderVersion()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var keyring = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var store = new DataKeyStore(db.RuntimeConnectionString, keyring);
        const int scopes = 450; // more than two pages of 200
        foreach (var chunk in Enumerable.Range(0, scopes).Chunk(50))
        {
            await Task.WhenAll(chunk.Select(i => store.GetCurrentAsync($"user:u_{i}", CancellationToken.None)));
        }

        DevelopmentKeyring.AddKek(KeyringPath);
        await store.GetCurrentAsync("user:u_0", CancellationToken.None); // one lazily re-wrapped before the job
        DevelopmentKeyring.AddKek(KeyringPath);
        var reports = new List<(long Done, long Total)>();
        var total = await store.RewrapAllAsync((done, count) => reports.Add((done, count)), CancellationToken.None);

        Assert.Equal(scopes, total);
        Assert.Equal((0L, scopes), reports[0]);
        Assert.Equal((scopes, scopes), reports[^1]);
        Assert.Equal(Enumerable.Range(0, scopes + 1).Select(i => (long)i), reports.Select(report => report.Done));
        Assert.Equal(new Dictionary<int, long> { [3] = scopes }, await store.CountByKekVersionAsync(CancellationToken.None));
        Assert.Equal(0, await store.RewrapAllAsync(null, CancellationToken.None));
    }

    [Fact]
    public async Task RetiringAVersion_IsRefusedWhileAKeyUsesIt_AndForTheCurrentOne_AllowedAfterTheRewrap()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var keyring = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var store = new DataKeyStore(db.RuntimeConnectionString, keyring);
        var rotation = new KeyRotation(store, keyring);
        var key = await store.GetCurrentAsync("system", CancellationToken.None);
        DevelopmentKeyring.AddKek(KeyringPath);

        Assert.Equal(new KekRetirement(1, KekRetireResult.InUse, 1), await rotation.RetireAsync(1, CancellationToken.None));
        Assert.Equal(KekRetireResult.Current, (await rotation.RetireAsync(2, CancellationToken.None)).Result);
        Assert.Equal(KekRetireResult.NotFound, (await rotation.RetireAsync(7, CancellationToken.None)).Result);
        Assert.Throws<InvalidOperationException>(() => DevelopmentKeyring.RetireKek(KeyringPath, 2));
        Assert.NotNull(keyring.FindKek(1));

        await store.RewrapAllAsync(null, CancellationToken.None);
        var retired = await rotation.RetireAsync(1, CancellationToken.None);

        Assert.Equal(KekRetireResult.Retired, retired.Result);
        Assert.Null(keyring.FindKek(1));
        Assert.Equal([2], keyring.KekVersions);
        Assert.Equal([new KekVersionInfo(2, Current: true, Available: true, 1)], await rotation.ListAsync(CancellationToken.None));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyringPath));
        using var file = JsonDocument.Parse(await File.ReadAllTextAsync(KeyringPath));
        var entry = file.RootElement.GetProperty("key_encryption_keys")[0];
        Assert.True(entry.GetProperty("retired").GetBoolean());
        Assert.False(entry.TryGetProperty("key", out _));
        Assert.Equal(3, DevelopmentKeyring.AddKek(KeyringPath)); // a retired version number is never reused
        using var reloaded = DevelopmentKeyring.LoadOrCreate(KeyringPath);
        using var fresh = new DataKeyStore(db.RuntimeConnectionString, reloaded);
        Assert.Equal(key.Key, (await fresh.FindAsync("system", key.Id, CancellationToken.None)).Key);
    }

    [Fact]
    public void ConcurrentRotations_EachAddADistinctVersion()
    {
        using var keyring = DevelopmentKeyring.LoadOrCreate(KeyringPath);

        var added = new int[8];
        Parallel.For(0, added.Length, i => added[i] = DevelopmentKeyring.AddKek(KeyringPath));

        Assert.Equal(Enumerable.Range(2, 8), added.Order());
        Assert.Equal(Enumerable.Range(1, 9), keyring.KekVersions);
        Assert.Equal(9, keyring.CurrentKek.Version);
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static async Task<int> KekVersionOfAsync(TestDatabase db, string scope)
    {
        await using var connection = new NpgsqlConnection(db.OwnerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT kek_version FROM bastion_keys.bastion_data_keys WHERE scope = @scope AND destroyed_at IS NULL", connection);
        command.Parameters.AddWithValue("scope", scope);
        return (int)(await command.ExecuteScalarAsync())!;
    }
}
