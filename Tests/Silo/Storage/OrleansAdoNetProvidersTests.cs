using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans.Configuration;

namespace Bastion.Tests.Silo.Storage;

/// <summary>The project's SQL drives the real Orleans ADO.NET clustering, persistence and reminder providers.</summary>
[Collection("Postgres")]
[SupportedOSPlatform("linux")]
public sealed class OrleansAdoNetProvidersTests(PostgresFixture postgres)
{
    private const string Invariant = "Npgsql";

    [Fact]
    public async Task GrainStateAndReminders_SurviveSiloRestart()
    {
        var db = await postgres.CreateMigratedDatabaseAsync();
        var key = $"probe-{Guid.NewGuid():N}";
        var period = TimeSpan.FromHours(1);

        using (var first = BuildSiloHost(db))
        {
            await first.StartAsync();
            var grain = first.Services.GetRequiredService<IGrainFactory>().GetGrain<IStorageProbeGrain>(key);
            await grain.SetValueAsync("first");
            await grain.SetValueAsync("second");
            await grain.RegisterReminderAsync("tick", period);
            Assert.True(await grain.HasReminderAsync("tick"));
            await first.StopAsync();
        }

        using (var second = BuildSiloHost(db))
        {
            await second.StartAsync();
            var grain = second.Services.GetRequiredService<IGrainFactory>().GetGrain<IStorageProbeGrain>(key);
            Assert.Equal("second", await grain.GetValueAsync());
            Assert.True(await grain.HasReminderAsync("tick"));
            Assert.False(await grain.HasReminderAsync("never-registered"));
            await second.StopAsync();
        }

        // Both silos joined through the membership table and the state row carries the second write.
        Assert.Equal(2L, await ScalarAsync(db, "SELECT count(*) FROM OrleansMembershipTable"));
        Assert.Equal(2, await ScalarAsync(db, "SELECT Version FROM OrleansStorage WHERE GrainTypeString = 'storageProbe'"));
        Assert.Equal((long)period.TotalMilliseconds, await ScalarAsync(db, "SELECT Period FROM OrleansRemindersTable WHERE ReminderName = 'tick'"));
    }

    private static IHost BuildSiloHost(TestDatabase db) =>
        new HostBuilder()
            .UseOrleans(silo =>
            {
                silo.Configure<ClusterOptions>(options =>
                {
                    options.ClusterId = db.Name;
                    options.ServiceId = db.Name;
                });
                silo.ConfigureEndpoints(IPAddress.Loopback, FindFreePort(), FindFreePort());
                silo.UseAdoNetClustering(options =>
                {
                    options.Invariant = Invariant;
                    options.ConnectionString = db.RuntimeConnectionString;
                });
                silo.AddAdoNetGrainStorage(StorageProbeGrain.StorageName, options =>
                {
                    options.Invariant = Invariant;
                    options.ConnectionString = db.RuntimeConnectionString;
                });
                silo.UseAdoNetReminderService(options =>
                {
                    options.Invariant = Invariant;
                    options.ConnectionString = db.RuntimeConnectionString;
                });

                // Two cores: generous probe timeouts so a busy machine does not declare a healthy silo dead.
                silo.Configure<ClusterMembershipOptions>(options =>
                {
                    options.ProbeTimeout = TimeSpan.FromSeconds(10);
                    options.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(30);
                    options.TableRefreshTimeout = TimeSpan.FromSeconds(10);
                });
            })
            .Build();

    private static int FindFreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<object?> ScalarAsync(TestDatabase db, string sql)
    {
        await using var connection = new NpgsqlConnection(db.OwnerConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
