using System.Net;
using System.Text.Json;
using Bastion.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// <c>/readyz</c> covers the key store as well as the state database: without keys no state can be
/// opened. Anyone gets the status, from a report shared for a short window; only an admin gets details.
/// </summary>
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

    [Fact]
    public async Task Readyz_AnonymousCallsWithinTheWindow_RunTheDatabaseCheckOnce_WithoutDetails_WhileAnAdminGetsAFreshDetailedReport()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var databaseChecks = 0;
        await using var silo = await TestSilo.StartAsync(database, directory, configure: builder =>
        {
            builder.Services.AddSingleton(sp => new ReadinessReports(sp.GetRequiredService<HealthCheckService>(), time));
            builder.Services.PostConfigure<HealthCheckServiceOptions>(options =>
            {
                var check = options.Registrations.Single(r => r.Name == "database");
                var create = check.Factory;
                check.Factory = services => new CountedCheck(create(services), () => Interlocked.Increment(ref databaseChecks));
            });
        });
        var user = await silo.CreateUserWithKeyAsync("ready-user-" + Guid.NewGuid().ToString("N"), "user");

        for (var i = 0; i < 10; i++)
        {
            using var anonymous = await silo.Http.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.OK, anonymous.StatusCode);
            Assert.Equal("""{"status":"Healthy"}""", await anonymous.Content.ReadAsStringAsync());
        }

        using (var asUser = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/readyz", user)))
        {
            Assert.Equal("""{"status":"Healthy"}""", await asUser.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, Volatile.Read(ref databaseChecks));

        using (var asAdmin = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/readyz", silo.AdminKey)))
        {
            using var details = JsonDocument.Parse(await asAdmin.Content.ReadAsStringAsync());
            Assert.Equal("Healthy", details.RootElement.GetProperty("checks").GetProperty("database").GetProperty("status").GetString());
        }

        Assert.Equal(2, Volatile.Read(ref databaseChecks));

        // Two seconds on: the shared report is due again.
        time.Advance(TimeSpan.FromSeconds(2));
        using (var later = await silo.Http.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, later.StatusCode);
        }

        Assert.Equal(3, Volatile.Read(ref databaseChecks));
    }

    private sealed class CountedCheck(IHealthCheck inner, Action counted) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            counted();
            return inner.CheckHealthAsync(context, cancellationToken);
        }
    }
}
