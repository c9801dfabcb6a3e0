using System.Net;
using System.Text.Json;

namespace Bastion.Tests.Silo.Api;

/// <summary>Limits set by an admin are enforced by the user grain and reported in the IETF fields.</summary>
[Collection(SiloCollection.Name)]
public sealed class LimitsApiTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task RequestLimit_Reached_Refuses429WithRetryAfterAndRateLimitFields()
    {
        var (id, apiKey) = await UserWithLimitsAsync(new { requests = new { algorithm = "sliding_window", limit = 3, window_seconds = 3600 } });

        for (var i = 0; i < 3; i++)
        {
            using var granted = await CompleteAsync(apiKey, maxTokens: 1);
            Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
            Assert.Equal($"\"requests\";r={2 - i};t=3600", Header(granted, "RateLimit"));
        }

        using var refused = await CompleteAsync(apiKey, maxTokens: 1);
        Assert.Equal((HttpStatusCode)429, refused.StatusCode);
        Assert.Equal("urn:bastion:problem:rate-limited", await ProblemTypeAsync(refused));
        Assert.InRange(long.Parse(Header(refused, "Retry-After"), System.Globalization.CultureInfo.InvariantCulture), 3590, 3600);
        Assert.Equal("\"requests\";q=3;w=3600", Header(refused, "RateLimit-Policy"));
        Assert.StartsWith("\"requests\";r=0;t=", Header(refused, "RateLimit"), StringComparison.Ordinal);
        Assert.Equal(3, await RequestsAsync(id));
    }

    [Fact]
    public async Task DailyQuota_UsedUp_RefusesWithTheQuotaProblem()
    {
        var (_, apiKey) = await UserWithLimitsAsync(new { daily_tokens = 6 });

        // "Hello" is one token; one prompt token + 3 reserved fits 6, and the 4 used leave 2.
        using var first = await CompleteAsync(apiKey, maxTokens: 3);
        using var second = await CompleteAsync(apiKey, maxTokens: 3);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal((HttpStatusCode)429, second.StatusCode);
        Assert.Equal("urn:bastion:problem:quota-exceeded", await ProblemTypeAsync(second));
        Assert.Equal("\"daily-tokens\";q=6;w=86400", Header(second, "RateLimit-Policy"));
        Assert.True(second.Headers.Contains("Retry-After"));
    }

    [Fact]
    public async Task TokenLimit_SmallerThanTheRequest_IsABadRequestNotARetry()
    {
        var (_, apiKey) = await UserWithLimitsAsync(new { tokens = new { algorithm = "token_bucket", limit = 10, window_seconds = 60 } });

        using var response = await CompleteAsync(apiKey, maxTokens: 20);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(response.Headers.Contains("Retry-After"));
    }

    [Fact]
    public async Task SetLimits_ReturnsTheEffectiveLimitsAndKeepsEarlierOverrides()
    {
        var (id, _) = await UserWithLimitsAsync(new { concurrency = 2 });

        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", Silo.AdminKey,
            new { tokens = new { algorithm = "leaky_bucket", limit = 500, window_seconds = 10 } }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(2, json.RootElement.GetProperty("concurrency").GetInt32());
        Assert.Equal("leaky_bucket", json.RootElement.GetProperty("tokens").GetProperty("algorithm").GetString());
        Assert.Equal("token_bucket", json.RootElement.GetProperty("requests").GetProperty("algorithm").GetString());
    }

    [Theory]
    [InlineData("{\"requests\": {\"algorithm\": \"gcra\", \"limit\": 1, \"window_seconds\": 1}}")]
    [InlineData("{\"requests\": {\"algorithm\": \"fixed_window\", \"limit\": 0, \"window_seconds\": 1}}")]
    [InlineData("{\"tokens\": {\"algorithm\": \"fixed_window\", \"limit\": 5}}")]
    [InlineData("{\"concurrency\": 0}")]
    [InlineData("{\"daily_tokens\": \"lots\"}")]
    public async Task SetLimits_Invalid_IsRefusedWithAProblem(string body)
    {
        var (id, _) = await UserWithLimitsAsync(new { });
        using var request = TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", Silo.AdminKey);
        request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");

        using var response = await Silo.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("urn:bastion:problem:invalid-request", await ProblemTypeAsync(response));
    }

    [Fact]
    public async Task TokenExchange_IsLimitedPerClientAddress()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        await using var silo = await TestSilo.StartAsync(database, directory, new Dictionary<string, string?> { ["Bastion:Http:TokenExchangesPerMinutePerAddress"] = "2" });

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/auth/token", null, new { api_key = "bst_guess" }));
            statuses.Add(response.StatusCode);
            if (i == 2)
            {
                Assert.Equal("urn:bastion:problem:rate-limited", await ProblemTypeAsync(response));
                Assert.True(response.Headers.Contains("Retry-After"));
            }
        }

        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, (HttpStatusCode)429], statuses);
    }

    private async Task<(string Id, string ApiKey)> UserWithLimitsAsync(object limits)
    {
        var id = "limits-" + Guid.NewGuid().ToString("N");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", Silo.AdminKey, limits));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (id, apiKey);
    }

    private Task<HttpResponseMessage> CompleteAsync(string apiKey, int maxTokens) =>
        Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Hello", max_tokens = maxTokens, temperature = 0 }));

    private async Task<long> RequestsAsync(string id)
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{id}", Silo.AdminKey));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("requests").GetInt64();
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    private static async Task<string?> ProblemTypeAsync(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("type").GetString();
    }
}
