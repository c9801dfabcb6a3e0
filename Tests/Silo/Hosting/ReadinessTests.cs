using System.Net;
using System.Text.Json;
using Npgsql;

namespace Bastion.Tests.Silo.Hosting;

/// <summary><c>/readyz</c> covers the key store as well as the state database: without keys no state can be opened.</summary>
[Collection(SiloCollection.Name)]
public sealed class ReadinessTests(SiloFixture fixture)
{
    [Fact]
    public async Task Readyz_KeyStoreUnreachable_IsNotReady_AndSaysWhich()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        await using var silo = await TestSilo.StartAsync(database, directory);
        using (var ready = await silo.Http.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        // The key store refuses the silo's role from now on, and drops the sessions it has.
        var keyStore = new NpgsqlConnectionStringBuilder(database.KeyStore);
        await using (var owner = new NpgsqlConnection(fixture.Postgres.OwnerConnectionString))
        {
            await owner.OpenAsync();
            await using var revoke = new NpgsqlCommand($"REVOKE CONNECT ON DATABASE {keyStore.Database} FROM {keyStore.Username}", owner);
            await revoke.ExecuteNonQueryAsync();
            await using var terminate = new NpgsqlCommand("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = @name", owner);
            terminate.Parameters.AddWithValue("name", keyStore.Database!);
            await terminate.ExecuteNonQueryAsync();
        }

        await using (var pooled = new NpgsqlConnection(database.KeyStore))
        {
            NpgsqlConnection.ClearPool(pooled);
        }

        using var notReady = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/readyz", silo.AdminKey));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        using var details = JsonDocument.Parse(await notReady.Content.ReadAsStringAsync());
        var check = details.RootElement.GetProperty("checks").GetProperty("database");
        Assert.Equal("Unhealthy", check.GetProperty("status").GetString());
        Assert.Equal("key store unreachable", check.GetProperty("description").GetString());
    }
}
