using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Bastion.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Bastion.Tests.Silo;

/// <summary>
/// A real Bastion silo for tests: built by the same <see cref="BastionApplication"/> as Program.cs,
/// serving HTTPS on a free loopback port from a test database, with its own data directory.
/// </summary>
public sealed class TestSilo : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly SiloDatabases _databases;

    private TestSilo(WebApplication app, SiloDatabases databases, string dataDirectory, HttpClient http)
    {
        _app = app;
        _databases = databases;
        DataDirectory = dataDirectory;
        Http = http;
    }

    public string DataDirectory { get; }

    /// <summary>The state database and key store this silo uses (runtime roles).</summary>
    public SiloDatabases Databases => _databases;

    /// <summary>A client that trusts exactly the silo's development CA.</summary>
    public HttpClient Http { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>The bootstrap admin's API key, as written to the key file.</summary>
    public string AdminKey => File.ReadAllText(Services.GetRequiredService<BootstrapAdmin>().KeyFile).Trim();

    public static async Task<TestSilo> StartAsync(
        SiloDatabases databases, string dataDirectory, IReadOnlyDictionary<string, string?>? settings = null, Action<WebApplicationBuilder>? configure = null)
    {
        var app = await BastionApplication.BuildAsync(["--environment=Development"], builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Bastion"] = databases.State,
                ["ConnectionStrings:BastionKeys"] = databases.KeyStore,
                ["Bastion:Node:DataDirectory"] = dataDirectory,
                ["Bastion:Inference:IntraOpThreads"] = "1",
                ["Bastion:Http:TokenExchangesPerMinutePerAddress"] = "100000",
                // Tests refuse many credentials from one loopback address on purpose; the tests of the limit set their own.
                ["Bastion:Http:AuthenticationFailuresPerMinutePerAddress"] = "1000000",
                ["Bastion:Http:AuthenticationFailuresPerMinutePerKey"] = "1000000",
                ["Logging:LogLevel:Default"] = "Warning",
            });
            if (settings is not null)
            {
                builder.Configuration.AddInMemoryCollection(settings);
            }

            configure?.Invoke(builder);
        });
        await app.StartAsync();
        var edge = app.Services.GetRequiredService<EdgeEndpoints>();
        var ca = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(edge.CaFile));
        var handler = new SocketsHttpHandler
        {
            // A disposed, half-read response closes its connection instead of being drained for reuse,
            // so a test that walks away from a stream looks to the server like a client that went away.
            MaxResponseDrainSize = 0,
            SslOptions =
            {
                RemoteCertificateValidationCallback = PinnedCa.Trusting(ca),
            },
        };
        var http = new HttpClient(handler) { BaseAddress = new Uri(edge.Url!) };
        return new TestSilo(app, databases, dataDirectory, http);
    }

    public static HttpRequestMessage Request(HttpMethod method, string path, string? bearer, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return request;
    }

    /// <summary>Every bearer is refused on <c>POST /v1/completions</c> with one identical problem body apart from <c>traceId</c>.</summary>
    public async Task AssertIdenticalUnauthorizedAsync(IEnumerable<string?> bearers)
    {
        var bodies = new List<string>();
        foreach (var bearer in bearers)
        {
            using var response = await Http.SendAsync(Request(HttpMethod.Post, "/v1/completions", bearer, new { model = "bastion-tiny-gpt2", prompt = "x" }));
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var body = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(await response.Content.ReadAsStringAsync())!;
            Assert.True(body.Remove("traceId"));
            bodies.Add(JsonSerializer.Serialize(body));
        }

        Assert.True(bodies.Distinct().Count() == 1, string.Join("\n", bodies.Distinct()));
    }

    /// <summary>Creates a user with the given roles and returns a fresh API key for them.</summary>
    public async Task<string> CreateUserWithKeyAsync(string userId, params string[] roles)
    {
        using var created = await Http.SendAsync(Request(HttpMethod.Post, "/admin/users", AdminKey, new { id = userId, roles }));
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        using var issued = await Http.SendAsync(Request(HttpMethod.Post, $"/admin/users/{userId}/api-keys", AdminKey, new { label = "test" }));
        Assert.Equal(System.Net.HttpStatusCode.Created, issued.StatusCode);
        using var json = JsonDocument.Parse(await issued.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("api_key").GetString()!;
    }

    /// <summary>
    /// Stops the silo without a graceful shutdown (a cancelled stop): no deactivations, no goodbye to
    /// the cluster. The closest an in-process test gets to <c>kill -9</c>.
    /// </summary>
    public async Task KillAsync()
    {
        Http.Dispose();
        await _app.StopAsync(new CancellationToken(canceled: true));
        await _app.DisposeAsync();
        ReleaseConnections();
        _killed = true;
    }

    private bool _killed;

    public async ValueTask DisposeAsync()
    {
        if (_killed)
        {
            return;
        }

        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        ReleaseConnections();
    }

    /// <summary>
    /// Closes the idle pooled connections to this silo's databases, as the end of a silo process would.
    /// Npgsql's pools are per process and keep idle connections for minutes, so without this the many
    /// silos a test run starts would exhaust the test server's connection slots.
    /// </summary>
    private void ReleaseConnections()
    {
        foreach (var connectionString in new[] { _databases.State, _databases.KeyStore })
        {
            using var connection = new NpgsqlConnection(connectionString);
            NpgsqlConnection.ClearPool(connection);
        }
    }
}
