using System.Net;
using System.Text.Json;
using Bastion.Api;
using Bastion.Generation;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Api;

/// <summary><c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>: the cluster's models, in OpenAI's shape, on every API silo.</summary>
[Collection(SiloCollection.Name)]
public sealed class ModelsApiTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    [Fact]
    public async Task GetModel_Known_IsTheOpenAiModelObjectWithItsContextLength()
    {
        var apiKey = await fixture.Silo.CreateUserWithKeyAsync("models-" + Guid.NewGuid().ToString("N"), "user");

        using var response = await fixture.Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/v1/models/{Model}", apiKey));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var model = json.RootElement;
        Assert.Equal(Model, model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.Equal("bastion", model.GetProperty("owned_by").GetString());
        Assert.True(model.GetProperty("context_length").GetInt32() > 0);
        Assert.InRange(model.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }

    [Fact]
    public async Task GetModel_Unknown_IsModelNotFound_AndUnauthenticated_IsUnauthorizedFirst()
    {
        var apiKey = await fixture.Silo.CreateUserWithKeyAsync("models-" + Guid.NewGuid().ToString("N"), "user");

        using var response = await fixture.Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models/no-such-model", apiKey));
        using var anonymous = await fixture.Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models/no-such-model", null));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("urn:bastion:problem:model-not-found", problem.RootElement.GetProperty("type").GetString());
        Assert.Equal("model_not_found", problem.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(problem.RootElement.GetProperty("traceId").GetString()));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task ApiOnlySilo_ListsAndDescribesItsWorkersModels()
    {
        var cluster = await fixture.CreateClusterAsync();
        await using var api = await cluster.StartSiloAsync("api", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "api" });
        await using var worker = await cluster.StartSiloAsync("worker", new Dictionary<string, string?> { ["Bastion:Node:Roles:0"] = "worker" });
        var apiKey = await api.CreateUserWithKeyAsync("models-api-" + Guid.NewGuid().ToString("N"), "user");

        // The API silo asks every silo its membership lists as active; the worker is listed once it has joined.
        string[] listed = [];
        for (var attempt = 0; attempt < 300 && listed.Length == 0; attempt++)
        {
            using var list = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models", apiKey));
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
            using var json = JsonDocument.Parse(await list.Content.ReadAsStringAsync());
            listed = [.. json.RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!)];
            if (listed.Length == 0)
            {
                await Task.Delay(100);
            }
        }

        if (listed.Length == 0)
        {
            var members = api.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot;
            Assert.Fail($"Nothing listed. Members: {string.Join("; ", members.Members.Values.Select(m => $"{m.SiloAddress} {m.Status}"))}");
        }

        Assert.Equal([Model], listed);
        using var one = await api.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/v1/models/{Model}", apiKey));
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        using var model = JsonDocument.Parse(await one.Content.ReadAsStringAsync());
        Assert.Equal(Model, model.RootElement.GetProperty("id").GetString());
        Assert.True(model.RootElement.GetProperty("context_length").GetInt32() > 0);
    }

    [Fact]
    public void Merge_OneEntryPerName_TheEarliestCreated_TheSmallestContext_OrderedByName()
    {
        var early = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

        var merged = ClusterModels.Merge(
        [
            new ServedModel("b", 2048, early.AddHours(1)),
            new ServedModel("a", 1024, early.AddHours(2)),
            new ServedModel("b", 1024, early.AddHours(3)),
            new ServedModel("b", 4096, early),
        ]);

        Assert.Equal([new ServedModel("a", 1024, early.AddHours(2)), new ServedModel("b", 1024, early)], merged);
    }
}
