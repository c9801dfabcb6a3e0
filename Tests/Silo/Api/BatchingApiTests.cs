using System.Net;
using System.Text.Json;
using Bastion.Generation;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Api;

/// <summary>The worker's batching queue seen over HTTP: a full queue refuses with 503 and charges nothing.</summary>
[Collection(SiloCollection.Name)]
public sealed class BatchingApiTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task FullQueue_RefusesWith503OverloadedAndRetryAfter_AndChargesNothing(bool stream)
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("overload-" + Guid.NewGuid().ToString("N"), "user");
        var engine = Silo.Services.GetRequiredService<ModelCatalog>().Engine(Model);
        var taken = 0;
        while (engine.TryReserve())
        {
            taken++;
        }

        try
        {
            using var refused = await CompleteAsync(apiKey, stream);
            var body = await refused.Content.ReadAsStringAsync();

            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.NotNull(refused.Headers.RetryAfter);
            using var problem = JsonDocument.Parse(body);
            Assert.Equal("urn:bastion:problem:overloaded", problem.RootElement.GetProperty("type").GetString());
            Assert.True(problem.RootElement.TryGetProperty("traceId", out _));
            var (requests, tokens) = await ChargedAsync(apiKey);
            Assert.Equal(0, requests);
            Assert.Equal(0, tokens);
        }
        finally
        {
            for (var i = 0; i < taken; i++)
            {
                engine.Release();
            }
        }

        using var served = await CompleteAsync(apiKey, stream);
        await served.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(1, (await ChargedAsync(apiKey)).Requests);
    }

    private async Task<HttpResponseMessage> CompleteAsync(string apiKey, bool stream) =>
        await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Hello", max_tokens = 4, stream }));

    private async Task<(long Requests, long Tokens)> ChargedAsync(string apiKey)
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", apiKey));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (json.RootElement.GetProperty("requests").GetInt64(), json.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt64());
    }
}
