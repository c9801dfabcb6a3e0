using System.Net;
using Bastion.Security;
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

        // A silo on the restored state database, with the live key store and the cluster's keyring.
        await using var restored = await TestSilo.StartAsync(
            new SiloDatabases(restoredRuntime, database.KeyStore),
            Directory.CreateDirectory(directory + "-restored").FullName,
            new Dictionary<string, string?> { ["Bastion:Keys:KeyringPath"] = Path.Combine(directory, "keyring.json") });
        var grains = restored.Services.GetRequiredService<IGrainFactory>();

        var refused = await Assert.ThrowsAnyAsync<Exception>(() => grains.GetGrain<IUserGrain>(alicePseudonym).GetProfileAsync());
        Assert.Contains($"The stored state 'user' of bastion.user/{alicePseudonym} cannot be opened", refused.ToString(), StringComparison.Ordinal);
        Assert.Contains("was destroyed; the state it protected is erased", refused.ToString(), StringComparison.Ordinal);

        Assert.NotNull(await grains.GetGrain<IUserGrain>(bobPseudonym).GetProfileAsync());
        using var me = await restored.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", bobKey));
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        using var bobAsAdminSeesHim = await restored.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{bob}", adminKey));
        Assert.Equal(HttpStatusCode.OK, bobAsAdminSeesHim.StatusCode);
    }

    private string OwnerOf(string runtimeConnectionString) =>
        PostgresTools.WithDatabase(fixture.Postgres.OwnerConnectionString, new NpgsqlConnectionStringBuilder(runtimeConnectionString).Database!);
}
