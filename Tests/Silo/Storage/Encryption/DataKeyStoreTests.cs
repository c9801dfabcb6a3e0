using System.Runtime.Versioning;
using System.Security.Cryptography;
using Bastion.Security;
using Bastion.Storage;
using Npgsql;

namespace Bastion.Tests.Silo.Storage.Encryption;

[Collection("Postgres")]
[SupportedOSPlatform("linux")]
public sealed class DataKeyStoreTests(PostgresFixture postgres)
{
    private static readonly VersionedSecret Kek1 = new(1, RandomNumberGenerator.GetBytes(32));
    private static readonly VersionedSecret Kek2 = new(2, RandomNumberGenerator.GetBytes(32));

    [Fact]
    public async Task GetCurrentAsync_ConcurrentFirstUseOnTwoSilos_AgreesOnOneKey_ThatOutlivesTheProcess()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var first = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek1));
        using var second = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek1));

        var keys = await Task.WhenAll(
            Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? first : second).GetCurrentAsync("user:u_a", CancellationToken.None)));
        using var restarted = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek1));
        var reread = await restarted.FindAsync("user:u_a", keys[0].Id, CancellationToken.None);

        Assert.Single(keys.Select(key => Convert.ToHexString(key.Key)).Distinct());
        Assert.Single(keys.Select(key => key.Id).Distinct());
        Assert.Equal(keys[0].Key, reread.Key);
        Assert.NotEqual(keys[0].Id, (await first.GetCurrentAsync("user:u_b", CancellationToken.None)).Id);
    }

    [Fact]
    public async Task FindAsync_KeyOfAnotherScope_IsUnavailable()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var store = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek1));
        var alice = await store.GetCurrentAsync("user:u_alice", CancellationToken.None);

        var error = await Assert.ThrowsAsync<DataKeyUnavailableException>(() => store.FindAsync("user:u_bob", alice.Id, CancellationToken.None));
        Assert.Contains("does not belong to scope user:u_bob", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DestroyAsync_MakesTheScopesStateUnreadable_AndTheNextWriteGetsANewKey()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var store = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek1));
        var before = await store.GetCurrentAsync("user:u_gone", CancellationToken.None);

        await store.DestroyAsync("user:u_gone", CancellationToken.None);

        var error = await Assert.ThrowsAsync<DataKeyUnavailableException>(() => store.FindAsync("user:u_gone", before.Id, CancellationToken.None));
        Assert.Contains("destroyed", error.Message, StringComparison.Ordinal);
        Assert.NotEqual(before.Id, (await store.GetCurrentAsync("user:u_gone", CancellationToken.None)).Id);
        await using var connection = new NpgsqlConnection(db.OwnerConnectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM bastion_keys.bastion_data_keys WHERE dek_id = @id AND wrapped IS NULL AND destroyed_at IS NOT NULL", connection);
        count.Parameters.AddWithValue("id", before.Id);
        Assert.Equal(1L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public async Task FindAsync_OlderKekVersion_StillUnwraps_UnknownVersionIsUnavailable()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        DataKey original;
        using (var old = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek1)))
        {
            original = await old.GetCurrentAsync("system", CancellationToken.None);
        }

        using var rotated = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek2, Kek1));
        var key = await rotated.FindAsync("system", original.Id, CancellationToken.None);
        using var withoutOld = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek2));

        Assert.Equal(1, key.KekVersion);
        var error = await Assert.ThrowsAsync<DataKeyUnavailableException>(() => withoutOld.FindAsync("system", key.Id, CancellationToken.None));
        Assert.Contains("KEK version 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RuntimeRole_CannotDeleteDataKeyRows()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        await using var connection = new NpgsqlConnection(db.RuntimeConnectionString);
        await connection.OpenAsync();
        await using var delete = new NpgsqlCommand("DELETE FROM bastion_keys.bastion_data_keys", connection);

        var error = await Assert.ThrowsAsync<PostgresException>(() => delete.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, error.SqlState);
    }

    [Fact]
    public async Task BeginErasureAsync_DestroysAndZeroes_RefusesNewKeysUntilComplete_AndARetryKeepsEveryKeyId()
    {
        var db = await postgres.CreateMigratedKeyStoreAsync();
        using var store = new DataKeyStore(db.RuntimeConnectionString, new KekProvider(Kek1));
        var before = await store.GetCurrentAsync("user:u_erased", CancellationToken.None);

        Assert.Equal(["k1"], await store.BeginErasureAsync("user:u_erased", ["k1"], CancellationToken.None));

        Assert.True(before.IsRetired);
        Assert.Equal(new byte[32], before.Key);
        await Assert.ThrowsAsync<DataKeyErasedException>(() => store.FindAsync("user:u_erased", before.Id, CancellationToken.None));
        await Assert.ThrowsAsync<DataKeyErasedException>(() => store.GetCurrentAsync("user:u_erased", CancellationToken.None));
        Assert.Equal(["k1", "k2"], await store.BeginErasureAsync("user:u_erased", ["k2"], CancellationToken.None));
        Assert.Equal(["k1", "k2"], await store.FindOpenErasureAsync("user:u_erased", CancellationToken.None));

        await store.CompleteErasureAsync("user:u_erased", CancellationToken.None);

        Assert.Null(await store.FindOpenErasureAsync("user:u_erased", CancellationToken.None));
        Assert.NotEqual(before.Id, (await store.GetCurrentAsync("user:u_erased", CancellationToken.None)).Id);
        await Assert.ThrowsAsync<DataKeyErasedException>(() => store.FindAsync("user:u_erased", before.Id, CancellationToken.None));
    }

    /// <summary>Only KEKs: the first one given is current.</summary>
    private sealed class KekProvider(params VersionedSecret[] keks) : Bastion.Tests.Silo.Security.PartialKeyProvider
    {
        public override VersionedSecret CurrentKek => keks[0];

        public override VersionedSecret? FindKek(int version) => Array.Find(keks, kek => kek.Version == version);

        public override IReadOnlyList<int> KekVersions => [.. keks.Select(kek => kek.Version).Order()];
    }
}
