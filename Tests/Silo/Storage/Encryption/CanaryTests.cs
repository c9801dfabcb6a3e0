using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Bastion.Tests.Silo.Storage.Encryption;

/// <summary>
/// Secrets a user hands Bastion (their id, a key label, a prompt) never reach PostgreSQL's files
/// (tables, WAL), a <c>pg_dump</c> of either database (state and key store) or the silo's log in any encoding.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class CanaryTests(SiloFixture fixture)
{
    [Fact]
    public async Task Canaries_InUserIdLabelAndPrompt_AppearNowhereOnDiskOrInTheLog()
    {
        var canary = "Canary" + Guid.NewGuid().ToString("N");
        var log = new ConcurrentQueue<string>();
        var (database, directory) = await fixture.CreateDatabaseAsync();
        await using (var silo = await TestSilo.StartAsync(database, directory, new Dictionary<string, string?>
        {
            // The shipped levels (Silo/appsettings.json), with Bastion's own categories at their most verbose.
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Bastion"] = "Trace",
            ["Logging:LogLevel:Orleans"] = "Warning",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        }, builder => builder.Logging.AddProvider(new CapturingLoggerProvider(log))))
        {
            var userId = "u-" + canary;
            using (var created = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", silo.AdminKey, new { id = userId, roles = new[] { "user" } })))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }

            using var issued = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{userId}/api-keys", silo.AdminKey, new { label = canary }));
            var apiKey = System.Text.Json.JsonDocument.Parse(await issued.Content.ReadAsStringAsync()).RootElement.GetProperty("api_key").GetString();
            foreach (var stream in new[] { false, true })
            {
                using var completion = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey,
                    new { model = "bastion-tiny-gpt2", prompt = $"My secret is {canary}.", max_tokens = 4, stream }));
                Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
                await completion.Content.ReadAsStringAsync();
            }

            using var suspended = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{userId}/suspend", silo.AdminKey));
            Assert.Equal(HttpStatusCode.NoContent, suspended.StatusCode);
        }

        // Everything written so far is flushed into the data files, not only the WAL.
        await using (var connection = new NpgsqlConnection(fixture.Postgres.OwnerConnectionString))
        {
            await connection.OpenAsync();
            await using var checkpoint = new NpgsqlCommand("CHECKPOINT", connection);
            await checkpoint.ExecuteNonQueryAsync();
        }

        var patterns = Encodings(canary);
        foreach (var connectionString in new[] { database.State, database.KeyStore })
        {
            var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
            var dump = Path.Combine(directory, $"{name}.sql");
            await PostgresTools.DumpAsync(PostgresTools.WithDatabase(fixture.Postgres.OwnerConnectionString, name), dump);
            var bytes = await File.ReadAllBytesAsync(dump);
            Assert.True(bytes.Length > 0);
            Assert.False(patterns.Any(p => bytes.AsSpan().IndexOf(p) >= 0), $"a canary encoding was found in the dump of {name}");
        }

        Assert.NotEmpty(log);
        Assert.DoesNotContain(log, line => patterns.Any(p => line.Contains(Encoding.Latin1.GetString(p), StringComparison.Ordinal)));
        var files = Directory.EnumerateFiles(fixture.Postgres.DataDirectory, "*", SearchOption.AllDirectories).ToList();
        Assert.Contains(files, f => f.Contains("pg_wal", StringComparison.Ordinal));
        foreach (var file in files)
        {
            byte[] bytes;
            try
            {
                bytes = await File.ReadAllBytesAsync(file);
            }
            catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
            {
                // The server is running: it removes and rewrites some files as it goes (its relation-cache init file,
                // statistics, recycled WAL segments). One gone since the listing holds nothing on disk under its name.
                continue;
            }

            Assert.False(patterns.Any(p => bytes.AsSpan().IndexOf(p) >= 0), $"a canary encoding was found in {Path.GetFileName(file)}");
        }
    }

    /// <summary>The canary as UTF-8, UTF-16 and base64 at each of the three byte alignments.</summary>
    private static List<byte[]> Encodings(string canary)
    {
        var utf8 = Encoding.UTF8.GetBytes(canary);
        var patterns = new List<byte[]> { utf8, Encoding.Unicode.GetBytes(canary), Encoding.BigEndianUnicode.GetBytes(canary) };
        for (var shift = 0; shift < 3; shift++)
        {
            // Base64 of the canary preceded by `shift` unknown bytes: the characters that depend only
            // on the canary's own bytes start at a fixed offset and stop before the last partial group.
            var encoded = Convert.ToBase64String([.. new byte[shift], .. utf8]);
            var start = (shift * 8 + 5) / 6 + (shift == 0 ? 0 : 1);
            patterns.Add(Encoding.ASCII.GetBytes(encoded[start..^4]));
        }

        return patterns;
    }

    private sealed class CapturingLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CapturingLogger(categoryName, lines);

        public void Dispose()
        {
        }
    }

    private sealed class CapturingLogger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{category} {formatter(state, exception)} {exception}");
    }
}
