using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bastion.Security;
using Bastion.Storage;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Bastion.Tests.Silo.Storage.Encryption;

/// <summary>
/// Erasure by key destruction reaches backups: a backup of the state database taken before a user
/// was deleted, restored after, no longer opens that user's state, and still opens everyone else's.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class ErasureTests(SiloFixture fixture)
{
    [Fact]
    public async Task DeletedUser_InARestoredStateBackup_NoLongerDecrypts_WhileOtherUsersStillDo()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var alice = $"erase-alice-{Guid.NewGuid():N}";
        var bob = $"erase-bob-{Guid.NewGuid():N}";
        var dump = Path.Combine(directory, "state.sql");
        string adminKey;
        string bobKey;
        string alicePseudonym;
        string bobPseudonym;
        await using (var silo = await TestSilo.StartAsync(database, directory))
        {
            await silo.CreateUserWithKeyAsync(alice, "user");
            bobKey = await silo.CreateUserWithKeyAsync(bob, "user");
            adminKey = silo.AdminKey;
            var pseudonyms = silo.Services.GetRequiredService<Pseudonymizer>();
            (alicePseudonym, bobPseudonym) = (pseudonyms.Pseudonymize(alice), pseudonyms.Pseudonymize(bob));

            // The nightly backup of the state database, taken while both users exist.
            await PostgresTools.DumpAsync(OwnerOf(database.State), dump);

            using var deleted = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, $"/admin/users/{alice}", adminKey));
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        // The backup holds both users' sealed state, and no key at all.
        var backup = await File.ReadAllTextAsync(dump);
        Assert.Contains(alicePseudonym, backup, StringComparison.Ordinal);
        Assert.Contains(bobPseudonym, backup, StringComparison.Ordinal);
        Assert.DoesNotContain("bastion_data_keys", backup, StringComparison.Ordinal);

        var restoredName = new NpgsqlConnectionStringBuilder(database.State).Database + "_restored";
        var (restoredOwner, restoredRuntime) = await fixture.Postgres.CreateDatabaseAsync(restoredName);
        await PostgresTools.RestoreAsync(restoredOwner, dump);
        // The operator's step after a deliberate restore (migrate --accept-restored-state): without it, every row
        // written since the backup would be refused as put back.
        await StateVersions.ForgetAllAsync(OwnerOf(database.KeyStore), CancellationToken.None);

        // A silo on the restored state database, with the live key store and the cluster's keyring.
        await using var restored = await TestSilo.StartAsync(
            new SiloDatabases(restoredRuntime, database.KeyStore),
            Directory.CreateDirectory(directory + "-restored").FullName,
            new Dictionary<string, string?> { ["Bastion:Keys:KeyringPath"] = Path.Combine(directory, "keyring.json") });
        var grains = restored.Services.GetRequiredService<IGrainFactory>();

        // Her restored row is still there, and reads as no user at all: its key went with an erasure.
        Assert.Null(await grains.GetGrain<IUserGrain>(alicePseudonym).GetProfileAsync());
        using var aliceAsAdminSeesNoOne = await restored.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{alice}", adminKey));
        Assert.Equal(HttpStatusCode.NotFound, aliceAsAdminSeesNoOne.StatusCode);

        Assert.NotNull(await grains.GetGrain<IUserGrain>(bobPseudonym).GetProfileAsync());
        using var me = await restored.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", bobKey));
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        using var bobAsAdminSeesHim = await restored.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{bob}", adminKey));
        Assert.Equal(HttpStatusCode.OK, bobAsAdminSeesHim.StatusCode);
    }

    [Fact]
    public async Task AdminDelete_RetriedAfterAFailureInTheMiddle_Completes()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var failure = new FailOnceFilter("bastion.user", nameof(IUserGrain.DeleteAsync));
        await using var silo = await TestSilo.StartAsync(database, directory, configure: builder => builder.Services.AddSingleton<IIncomingGrainCallFilter>(failure));
        var id = $"erase-retry-{Guid.NewGuid():N}";
        var apiKey = await silo.CreateUserWithKeyAsync(id, "user");
        var keyId = await OnlyKeyIdAsync(silo, id);
        var pseudonym = silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(id);
        var scope = DataKeyScope.ForUser(pseudonym);
        var dataKeys = silo.Services.GetRequiredService<DataKeyStore>();
        var grains = silo.Services.GetRequiredService<IGrainFactory>();
        var dataKeyId = (await dataKeys.GetCurrentAsync(scope, CancellationToken.None)).Id;

        // The delete fails after the key was destroyed, before the user grain's row was cleared.
        using (var failed = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, $"/admin/users/{id}", silo.AdminKey)))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        Assert.Equal(1, failure.Failures);
        await Assert.ThrowsAsync<DataKeyErasedException>(() => dataKeys.FindAsync(scope, dataKeyId, CancellationToken.None));
        Assert.Equal($"open [{keyId}]", await ErasureRecordAsync(database.KeyStore, scope));

        // Every activation goes: the next one reads the row whose key is gone, as no user.
        await grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        using (var profile = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{id}", silo.AdminKey)))
        {
            Assert.Equal(HttpStatusCode.NotFound, profile.StatusCode);
        }

        using (var me = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", apiKey)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }

        using (var retried = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, $"/admin/users/{id}", silo.AdminKey)))
        {
            Assert.Equal(HttpStatusCode.NoContent, retried.StatusCode);
        }

        Assert.Equal($"complete [{keyId}]", await ErasureRecordAsync(database.KeyStore, scope));
        Assert.Null(await grains.GetGrain<IApiKeyRouteGrain>(keyId).GetOwnerAsync());
        Assert.DoesNotContain(id, await ListedIdsAsync(silo));
        using (var again = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, $"/admin/users/{id}", silo.AdminKey)))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }

        // Once complete, the id may be used again, under a new key.
        await silo.CreateUserWithKeyAsync(id, "user");
        Assert.Contains(id, await ListedIdsAsync(silo));
    }

    [Fact]
    public async Task AfterErasure_NoRawUserIdRemainsInTheStateDatabase_NorInABackupTakenBefore()
    {
        var silo = fixture.Silo;
        var alice = $"erase-scan-alice-{Guid.NewGuid():N}";
        var bob = $"erase-scan-bob-{Guid.NewGuid():N}";
        var aliceKey = await silo.CreateUserWithKeyAsync(alice, "user");
        await silo.CreateUserWithKeyAsync(bob, "user");
        using (var completion = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", aliceKey, new { model = "bastion-tiny-gpt2", prompt = "Hi", max_tokens = 1 })))
        {
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        var dataKeys = silo.Services.GetRequiredService<DataKeyStore>();
        var databases = silo.Databases;

        // The backup: every stored state as it is while both exist. An attacker with it, and with every key the
        // live key store still holds, opens all of it, nested envelopes too, and ignores the GCM tags.
        var backup = await ReadPayloadsAsync(databases.State);
        Assert.True(await RevealsAsync(backup, alice, databases.KeyStore, dataKeys), "the scan does not find a listed user's id before erasure");

        using (var deleted = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, "/v1/me", aliceKey)))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        Assert.False(await RevealsAsync(backup, alice, databases.KeyStore, dataKeys), "the backup still gives away the erased user's id");
        Assert.False(await RevealsAsync(await ReadPayloadsAsync(databases.State), alice, databases.KeyStore, dataKeys), "the state database still gives away the erased user's id");
        Assert.True(await RevealsAsync(backup, bob, databases.KeyStore, dataKeys), "the scan no longer finds the other user's id");
    }

    private static async Task<string> OnlyKeyIdAsync(TestSilo silo, string id)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{id}", silo.AdminKey));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("api_keys").EnumerateArray().Single().GetProperty("id").GetString()!;
    }

    private static async Task<List<string>> ListedIdsAsync(TestSilo silo)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/admin/users?limit=500", silo.AdminKey));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return [.. json.RootElement.GetProperty("data").EnumerateArray().Select(user => user.GetProperty("id").GetString()!)];
    }

    /// <summary>The erasure record of <paramref name="scope"/> as <c>open|complete [key ids]</c>, or null.</summary>
    private static async Task<string?> ErasureRecordAsync(string keyStore, string scope)
    {
        await using var connection = new NpgsqlConnection(keyStore);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT completed_at IS NOT NULL, api_key_ids FROM bastion_keys.bastion_erasures WHERE scope = @scope", connection);
        command.Parameters.AddWithValue("scope", scope);
        await using var reader = await command.ExecuteReaderAsync();
        return await reader.ReadAsync() ? $"{(reader.GetBoolean(0) ? "complete" : "open")} [{string.Join(",", (string[])reader.GetValue(1))}]" : null;
    }

    private static async Task<List<byte[]>> ReadPayloadsAsync(string state)
    {
        var payloads = new List<byte[]>();
        await using var connection = new NpgsqlConnection(state);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT payloadbinary FROM orleansstorage WHERE payloadbinary IS NOT NULL", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            payloads.Add((byte[])reader.GetValue(0));
        }

        return payloads;
    }

    /// <summary>
    /// Whether <paramref name="userId"/> appears in any of <paramref name="payloads"/> once every envelope in them (at any
    /// offset, so nested ones too) is decrypted with whatever live key the key store has for it. Decryption is AES-CTR
    /// from GCM's first data counter (nonce ‖ 2), by hand: the attacker needs neither the tag nor the associated data.
    /// </summary>
    private static async Task<bool> RevealsAsync(IEnumerable<byte[]> payloads, string userId, string keyStore, DataKeyStore dataKeys)
    {
        var needle = Encoding.UTF8.GetBytes(userId);
        var pending = new Queue<(byte[] Bytes, int Depth)>(payloads.Select(p => (p, 0)));
        while (pending.TryDequeue(out var item))
        {
            if (item.Bytes.AsSpan().IndexOf(needle) >= 0)
            {
                return true;
            }

            for (var at = item.Bytes.AsSpan().IndexOf("BSTE"u8); at >= 0 && item.Depth < 3; at = NextMagic(item.Bytes, at + 1))
            {
                if (item.Bytes.Length < at + 37)
                {
                    break;
                }

                var dekId = new Guid(item.Bytes.AsSpan(at + 5, 16), bigEndian: true);
                if (await LiveKeyAsync(keyStore, dataKeys, dekId) is { } key)
                {
                    pending.Enqueue((CounterModeDecrypt(key, item.Bytes.AsSpan(at + 25, 12), item.Bytes.AsSpan(at + 37)), item.Depth + 1));
                }
            }
        }

        return false;

        static int NextMagic(byte[] bytes, int from)
        {
            var next = bytes.AsSpan(from).IndexOf("BSTE"u8);
            return next < 0 ? -1 : from + next;
        }
    }

    private static async Task<byte[]?> LiveKeyAsync(string keyStore, DataKeyStore dataKeys, Guid dekId)
    {
        await using var connection = new NpgsqlConnection(keyStore);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT scope FROM bastion_keys.bastion_data_keys WHERE dek_id = @id", connection);
        command.Parameters.AddWithValue("id", dekId);
        if (await command.ExecuteScalarAsync() is not string scope)
        {
            return null;
        }

        try
        {
            return (byte[])(await dataKeys.FindAsync(scope, dekId, CancellationToken.None)).Key.Clone();
        }
        catch (DataKeyUnavailableException)
        {
            return null;
        }
    }

    private static byte[] CounterModeDecrypt(byte[] key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext)
    {
        using var aes = Aes.Create();
        aes.Key = key;
        var counter = new byte[16];
        nonce.CopyTo(counter);
        var plaintext = new byte[ciphertext.Length];
        var stream = new byte[16];
        for (var block = 0; block * 16 < ciphertext.Length; block++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(counter.AsSpan(12), (uint)(block + 2));
            aes.EncryptEcb(counter, stream, PaddingMode.None);
            for (var i = 0; i < 16 && block * 16 + i < ciphertext.Length; i++)
            {
                plaintext[block * 16 + i] = (byte)(ciphertext[block * 16 + i] ^ stream[i]);
            }
        }

        return plaintext;
    }

    /// <summary>Fails the first call to <paramref name="method"/> of grain type <paramref name="grainType"/>, as a crash there would.</summary>
    private sealed class FailOnceFilter(string grainType, string method) : IIncomingGrainCallFilter
    {
        private int _failures;

        public int Failures => Volatile.Read(ref _failures);

        public Task Invoke(IIncomingGrainCallContext context)
        {
            if (context.TargetId.Type.ToString() == grainType && context.MethodName == method && Interlocked.CompareExchange(ref _failures, 1, 0) == 0)
            {
                throw new InvalidOperationException("Injected failure in the middle of an erasure.");
            }

            return context.Invoke();
        }
    }

    private string OwnerOf(string runtimeConnectionString) =>
        PostgresTools.WithDatabase(fixture.Postgres.OwnerConnectionString, new NpgsqlConnectionStringBuilder(runtimeConnectionString).Database!);
}
