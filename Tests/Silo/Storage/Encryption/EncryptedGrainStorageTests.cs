using System.Net;
using System.Text;
using System.Text.Json;
using Bastion.Security;
using Bastion.Storage;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Bastion.Tests.Silo.Storage.Encryption;

/// <summary>What lands in PostgreSQL is sealed, and a sealed row is only ever read back by the grain it belongs to.</summary>
[Collection(SiloCollection.Name)]
public sealed class EncryptedGrainStorageTests(SiloFixture fixture)
{
    [Fact]
    public async Task StoredPayloads_AreEnvelopes_AndHoldNoUserIdLabelOrPrompt()
    {
        var (database, dataDirectory) = await fixture.CreateDatabaseAsync();
        var canary = "canary" + Guid.NewGuid().ToString("N");
        var userId = "user-" + canary;
        string pseudonym;
        await using (var silo = await TestSilo.StartAsync(database, dataDirectory))
        {
            pseudonym = silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(userId);
            using var created = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", silo.AdminKey, new { id = userId, roles = new[] { "user" } }));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            using var issued = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{userId}/api-keys", silo.AdminKey, new { label = "label-" + canary }));
            Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
            using var json = JsonDocument.Parse(await issued.Content.ReadAsStringAsync());
            var apiKey = json.RootElement.GetProperty("api_key").GetString()!;
            using var completion = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "prompt " + canary, max_tokens = 2 }));
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        var rows = await ReadPayloadsAsync(database);

        Assert.Contains(rows, row => row.State == "user" && row.Key == pseudonym);
        Assert.Contains(rows, row => row.State == "user-directory");
        Assert.Contains(rows, row => row.State == "api-key-route");
        foreach (var row in rows)
        {
            Assert.Equal(EnvelopeCipher.FormatVersion, EnvelopeCipher.ReadHeader(row.Payload).FormatVersion);
            Assert.Equal(-1, row.Payload.AsSpan().IndexOf(Encoding.UTF8.GetBytes(canary)));
            Assert.Equal(-1, row.Payload.AsSpan().IndexOf(Encoding.Unicode.GetBytes(canary)));
        }

        var scopes = await ReadKeyScopesAsync(database.KeyStore, rows.Select(row => EnvelopeCipher.ReadHeader(row.Payload).DataKeyId));
        Assert.Equal(DataKeyScope.ForUser(pseudonym), scopes[EnvelopeCipher.ReadHeader(rows.Single(row => row.State == "user" && row.Key == pseudonym).Payload).DataKeyId]);
        Assert.All(rows.Where(row => row.State != "user"), row => Assert.Equal(DataKeyScope.System, scopes[EnvelopeCipher.ReadHeader(row.Payload).DataKeyId]));
    }

    [Fact]
    public async Task TamperedRows_AreRefusedWithAClearError_WhileUntouchedRowsStillRead()
    {
        var (database, dataDirectory) = await fixture.CreateDatabaseAsync();
        var ids = new[] { "alice", "bob", "carol", "dave" }.Select(name => $"{name}-{Guid.NewGuid():N}").ToArray();
        var keys = new string[ids.Length];
        string[] pseudonyms;
        await using (var silo = await TestSilo.StartAsync(database, dataDirectory))
        {
            for (var i = 0; i < ids.Length; i++)
            {
                keys[i] = await silo.CreateUserWithKeyAsync(ids[i], "user");
            }

            var pseudonymizer = silo.Services.GetRequiredService<Pseudonymizer>();
            pseudonyms = [.. ids.Select(pseudonymizer.Pseudonymize)];
        }

        var rows = (await ReadPayloadsAsync(database)).Where(row => row.State == "user").ToDictionary(row => row.Key, row => row.Payload);
        var corrupted = (byte[])rows[pseudonyms[2]].Clone();
        corrupted[corrupted.Length / 2] ^= 0x20;
        // bob gets alice's (validly sealed) row, carol a flipped bit, dave a plain pre-encryption payload.
        await SetUserPayloadAsync(database, pseudonyms[1], rows[pseudonyms[0]]);
        await SetUserPayloadAsync(database, pseudonyms[2], corrupted);
        await SetUserPayloadAsync(database, pseudonyms[3], Encoding.UTF8.GetBytes("{\"plain\":\"state\"}"));

        await using var restarted = await TestSilo.StartAsync(database, dataDirectory);
        var grains = restarted.Services.GetRequiredService<IGrainFactory>();

        Assert.NotNull(await grains.GetGrain<IUserGrain>(pseudonyms[0]).GetProfileAsync());
        await AssertRefusedAsync(grains, pseudonyms[1], "does not belong to scope");
        await AssertRefusedAsync(grains, pseudonyms[2], "failed authentication");
        await AssertRefusedAsync(grains, pseudonyms[3], "not a Bastion envelope");
        using var me = await restarted.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", keys[0]));
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
    }

    [Fact]
    public async Task RowsPutBackFromAnOlderCopy_OrDeleted_AreRefused()
    {
        var (database, dataDirectory) = await fixture.CreateDatabaseAsync();
        var ids = new[] { "alice", "bob", "carol", "dave" }.Select(name => $"{name}-{Guid.NewGuid():N}").ToArray();
        var keys = new string[ids.Length];
        string[] pseudonyms;
        Dictionary<string, (byte[] Payload, int Version)> before;
        await using (var silo = await TestSilo.StartAsync(database, dataDirectory))
        {
            for (var i = 0; i < ids.Length; i++)
            {
                keys[i] = await silo.CreateUserWithKeyAsync(ids[i], "user");
            }

            pseudonyms = [.. ids.Select(silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize)];
            before = await ReadUserRowsAsync(database);

            // Each user's key is revoked: the rows written now are the ones an attacker wants gone.
            for (var i = 0; i < ids.Length; i++)
            {
                using var revoked = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Delete, $"/admin/users/{ids[i]}/api-keys/{keys[i][4..28]}", silo.AdminKey));
                Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
            }
        }

        var after = await ReadUserRowsAsync(database);
        // alice: her row from before the revocation, version and all; bob: that payload under the current version;
        // carol: no row at all; dave: untouched.
        await SetUserRowAsync(database, pseudonyms[0], before[pseudonyms[0]].Payload, before[pseudonyms[0]].Version);
        await SetUserRowAsync(database, pseudonyms[1], before[pseudonyms[1]].Payload, after[pseudonyms[1]].Version);
        await DeleteUserRowAsync(database, pseudonyms[2]);

        await using var restarted = await TestSilo.StartAsync(database, dataDirectory);
        var grains = restarted.Services.GetRequiredService<IGrainFactory>();

        await AssertRefusedAsync(grains, pseudonyms[0], $"the stored row is version {before[pseudonyms[0]].Version}, but version {after[pseudonyms[0]].Version} was committed");
        await AssertRefusedAsync(grains, pseudonyms[1], "failed authentication");
        await AssertRefusedAsync(grains, pseudonyms[2], $"the stored row is version 0, but version {after[pseudonyms[2]].Version} was committed");
        Assert.NotNull(await grains.GetGrain<IUserGrain>(pseudonyms[3]).GetProfileAsync());
        for (var i = 0; i < ids.Length; i++)
        {
            using var me = await restarted.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", keys[i]));
            Assert.NotEqual(HttpStatusCode.OK, me.StatusCode);
        }
    }

    private static async Task AssertRefusedAsync(IGrainFactory grains, string pseudonym, string reason)
    {
        var exception = await Assert.ThrowsAnyAsync<Exception>(() => grains.GetGrain<IUserGrain>(pseudonym).GetProfileAsync());
        var text = exception.ToString();
        Assert.Contains($"The stored state 'user' of bastion.user/{pseudonym} cannot be opened", text, StringComparison.Ordinal);
        Assert.Contains(reason, text, StringComparison.Ordinal);
    }

    private static async Task<List<(string State, string Key, byte[] Payload)>> ReadPayloadsAsync(string connectionString)
    {
        var rows = new List<(string, string, byte[])>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT graintypestring, grainidextensionstring, payloadbinary FROM orleansstorage WHERE payloadbinary IS NOT NULL", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetString(1), (byte[])reader.GetValue(2)));
        }

        return rows;
    }

    private static async Task<Dictionary<Guid, string>> ReadKeyScopesAsync(string connectionString, IEnumerable<Guid> ids)
    {
        var scopes = new Dictionary<Guid, string>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT dek_id, scope FROM bastion_keys.bastion_data_keys WHERE dek_id = ANY(@ids)", connection);
        command.Parameters.AddWithValue("ids", ids.Distinct().ToArray());
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            scopes[reader.GetGuid(0)] = reader.GetString(1);
        }

        return scopes;
    }

    private static async Task<Dictionary<string, (byte[] Payload, int Version)>> ReadUserRowsAsync(string connectionString)
    {
        var rows = new Dictionary<string, (byte[], int)>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT grainidextensionstring, payloadbinary, version FROM orleansstorage WHERE graintypestring = 'user'", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows[reader.GetString(0)] = ((byte[])reader.GetValue(1), reader.GetInt32(2));
        }

        return rows;
    }

    private static async Task SetUserRowAsync(string connectionString, string pseudonym, byte[] payload, int version)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "UPDATE orleansstorage SET payloadbinary = @payload, version = @version WHERE graintypestring = 'user' AND grainidextensionstring = @key", connection);
        command.Parameters.AddWithValue("payload", payload);
        command.Parameters.AddWithValue("version", version);
        command.Parameters.AddWithValue("key", pseudonym);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    private static async Task DeleteUserRowAsync(string connectionString, string pseudonym)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("DELETE FROM orleansstorage WHERE graintypestring = 'user' AND grainidextensionstring = @key", connection);
        command.Parameters.AddWithValue("key", pseudonym);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    private static async Task SetUserPayloadAsync(string connectionString, string pseudonym, byte[] payload)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("UPDATE orleansstorage SET payloadbinary = @payload WHERE graintypestring = 'user' AND grainidextensionstring = @key", connection);
        command.Parameters.AddWithValue("payload", payload);
        command.Parameters.AddWithValue("key", pseudonym);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }
}
