using System.Net;
using System.Text.Json;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// Failed authentications are counted for the whole cluster, per client address and per API key id: guesses spread
/// over two API silos meet one limit, and a blocked address or key is refused before its credential is checked.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class AuthenticationFailureLimitTests(SiloFixture fixture)
{
    // The limits under test, written here rather than read from the product's defaults.
    private const string PerAddress = "4";
    private const string PerKey = "2";

    private const HttpStatusCode TooMany = (HttpStatusCode)429;

    [Fact]
    public async Task FailuresOnTwoSilos_MeetOneLimit_PerKeyAndPerAddress()
    {
        var cluster = await fixture.CreateClusterAsync(new Dictionary<string, string?>
        {
            ["Bastion:Http:AuthenticationFailuresPerMinutePerAddress"] = PerAddress,
            ["Bastion:Http:AuthenticationFailuresPerMinutePerKey"] = PerKey,
        });
        cluster = cluster with { Settings = new Dictionary<string, string?>(cluster.Settings) { ["Bastion:Bootstrap:KeyFile"] = Path.Combine(cluster.Directory, "admin-api-key") } };
        await using var a = await cluster.StartSiloAsync("a");
        await using var b = await cluster.StartSiloAsync("b");
        var attacked = await a.CreateUserWithKeyAsync("limit-" + Guid.NewGuid().ToString("N"), "user");
        var bystander = await a.CreateUserWithKeyAsync("limit-" + Guid.NewGuid().ToString("N"), "user");
        // The attacked key's real id with a wrong secret of the right length.
        var guess = attacked[..^43] + new string('A', 43);

        // Per key: one wrong secret on each silo reaches the key's limit of 2.
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(a, guess));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(b, guess));
        await AssertRefusedAsync(await SendAsync(b, attacked));
        await AssertRefusedAsync(await b.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/auth/token", null, new { api_key = attacked })));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(b, bystander)); // the address itself is not blocked yet

        // Per address: 2 failures so far; one more on each silo reaches 4.
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(a, "bst_not-a-key"));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(b, "bst_not-a-key"));
        await AssertRefusedAsync(await SendAsync(b, bystander)); // refused before its valid key is looked at
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(a, "bst_not-a-key")); // a learns from its next failure
        await AssertRefusedAsync(await SendAsync(a, bystander));
    }

    private static Task<HttpResponseMessage> SendAsync(TestSilo silo, string bearer) =>
        silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", bearer));

    private static async Task<HttpStatusCode> StatusAsync(TestSilo silo, string bearer)
    {
        using var response = await SendAsync(silo, bearer);
        return response.StatusCode;
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response)
    {
        using (response)
        {
            Assert.Equal(TooMany, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("urn:bastion:problem:rate-limited", problem.RootElement.GetProperty("type").GetString());
            Assert.True(problem.RootElement.TryGetProperty("traceId", out _));
            var retryAfter = Assert.Single(response.Headers.GetValues("Retry-After"));
            Assert.InRange(int.Parse(retryAfter, System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        }
    }
}
