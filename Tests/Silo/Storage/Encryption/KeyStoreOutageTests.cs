using System.Net;
using System.Text.Json;
using Bastion.Generation;
using Bastion.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bastion.Tests.Silo.Storage.Encryption;

/// <summary>
/// The key store on a PostgreSQL server of its own, stopped under a running silo: every request that touches a user's
/// state gets <c>503</c> <c>urn:bastion:problem:keys-unavailable</c>, and nothing is generated or read for it, whether
/// or not the user's data key is still in the silo's cache (each state write records its version in the key store).
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class KeyStoreOutageTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private static readonly string[] InternalMarkers = ["Npgsql", "Exception", "   at ", "127.0.0.1", "SELECT", "bastion_keys", "/tmp/"];

    [Fact]
    public async Task KeyStoreServerStopped_RequestsTouchingUserState_Get503KeysUnavailable_AndNothingIsServed()
    {
        var name = "outage_" + Guid.NewGuid().ToString("N")[..8];
        var root = Path.Combine(Path.GetTempPath(), "bastion-" + name);
        var (stateOwner, state) = await fixture.Postgres.CreateDatabaseAsync(name);
        await SchemaMigrator.MigrateAsync(stateOwner, EmbeddedPostgres.RuntimeRole, CancellationToken.None);
        var keyServer = await EmbeddedPostgres.StartAsync(
            await EmbeddedPostgres.ResolveDataDirectoryAsync(Path.Combine(root, "key-store"), CancellationToken.None),
            new EmbeddedPostgresOptions { DisableDurability = true }, NullLogger.Instance, CancellationToken.None);
        TestSilo? silo = null;
        try
        {
            var (keyStoreOwner, keyStore) = await keyServer.CreateKeyStoreDatabaseAsync(name + "_keys");
            await SchemaMigrator.MigrateAsync(SchemaMigrationSet.KeyStore, keyStoreOwner, EmbeddedPostgres.KeyStoreRuntimeRole, CancellationToken.None);
            var databases = new SiloDatabases(state, keyStore);
            var directory = Directory.CreateDirectory(Path.Combine(root, "silo")).FullName;
            var warm = "warm-" + Guid.NewGuid().ToString("N");
            var cold = "cold-" + Guid.NewGuid().ToString("N");
            string warmKey, coldKey;
            await using (var first = await TestSilo.StartAsync(databases, directory))
            {
                warmKey = await first.CreateUserWithKeyAsync(warm, "user");
                coldKey = await first.CreateUserWithKeyAsync(cold, "user");
            }

            // Restarted, the silo holds no activation and no data key. The warm user and the admin are then served once,
            // so their grains are active and their keys cached, as for users served a moment ago; the cold user is not.
            silo = await TestSilo.StartAsync(databases, directory);
            var dataKeys = silo.Services.GetRequiredService<DataKeyStore>();
            Assert.Equal(HttpStatusCode.OK, (await CompleteAsync(silo, warmKey)).Status);
            // (Not GET /admin/users: listing opens every user's sealed id in the directory, which caches every user's key.)
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(silo, HttpMethod.Get, $"/admin/users/{warm}", silo.AdminKey));

            await keyServer.DisposeAsync();
            var drain = silo.Services.GetRequiredService<WorkerDrain>();

            // Even the warm user, whose data key is cached, is refused: every state write records its version in the key
            // store (docs/encryption.md, rolled-back rows), so nothing is admitted while the key store is away.
            var generated = drain.Started;
            AssertKeysUnavailable(await CompleteAsync(silo, warmKey));

            // Everything that needs the cold user's key is refused: their own requests (a completion, their profile, a
            // token exchange) and an admin's read of their state.
            AssertKeysUnavailable(await CompleteAsync(silo, coldKey));
            AssertKeysUnavailable(await SendAsync(silo, HttpMethod.Get, "/v1/me", coldKey));
            AssertKeysUnavailable(await SendAsync(silo, HttpMethod.Post, "/v1/auth/token", null, new { api_key = coldKey }));
            AssertKeysUnavailable(await SendAsync(silo, HttpMethod.Get, $"/admin/users/{cold}", silo.AdminKey));

            // And still once the cache's lifetime ends (what its expiry does, without waiting ten minutes).
            dataKeys.ForgetCachedKeys();
            AssertKeysUnavailable(await CompleteAsync(silo, warmKey));

            Assert.Equal(generated, drain.Started);
        }
        finally
        {
            if (silo is not null)
            {
                await silo.DisposeAsync();
            }

            await keyServer.DisposeAsync();
            foreach (var directory in new[] { root, keyServer.DataDirectory })
            {
                try
                {
                    Directory.Delete(directory, recursive: true);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    // Best effort: temporary files are no part of any assertion.
                }
            }
        }
    }

    private static void AssertKeysUnavailable((HttpStatusCode Status, string? ContentType, string? RetryAfter, string Body) response)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.Equal("application/problem+json", response.ContentType);
        Assert.NotNull(response.RetryAfter);
        using var problem = JsonDocument.Parse(response.Body);
        Assert.Equal("urn:bastion:problem:keys-unavailable", problem.RootElement.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(problem.RootElement.GetProperty("traceId").GetString()));
        Assert.False(problem.RootElement.TryGetProperty("choices", out _));
        Assert.DoesNotContain(InternalMarkers, marker => response.Body.Contains(marker, StringComparison.Ordinal));
    }

    private static Task<(HttpStatusCode Status, string? ContentType, string? RetryAfter, string Body)> CompleteAsync(TestSilo silo, string apiKey) =>
        SendAsync(silo, HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Hi", max_tokens = 2 });

    private static async Task<HttpStatusCode> StatusAsync(TestSilo silo, HttpMethod method, string path, string bearer) =>
        (await SendAsync(silo, method, path, bearer)).Status;

    private static async Task<(HttpStatusCode Status, string? ContentType, string? RetryAfter, string Body)> SendAsync(
        TestSilo silo, HttpMethod method, string path, string? bearer, object? body = null)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(method, path, bearer, body));
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, response.Headers.RetryAfter?.ToString(), await response.Content.ReadAsStringAsync());
    }
}
