using System.Net;
using System.Text.Json;

namespace Bastion.Tests.Silo.Api;

/// <summary>Users, keys and usage live in PostgreSQL, so they outlast the silo that wrote them.</summary>
[Collection(SiloCollection.Name)]
public sealed class RestartTests(SiloFixture fixture)
{
    [Fact]
    public async Task UsersKeysAndUsage_SurviveASiloRestart()
    {
        var (database, dataDirectory) = await fixture.CreateDatabaseAsync();
        string apiKey;
        string adminKey;
        await using (var first = await TestSilo.StartAsync(database, dataDirectory))
        {
            adminKey = first.AdminKey;
            apiKey = await first.CreateUserWithKeyAsync("restart-" + Guid.NewGuid().ToString("N"), "user");
            using var completion = await first.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = "bastion-tiny-gpt2", prompt = "Remember me", max_tokens = 3 }));
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        await using var second = await TestSilo.StartAsync(database, dataDirectory);

        Assert.Equal(adminKey, second.AdminKey);
        using var me = await second.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", apiKey));
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        using var json = JsonDocument.Parse(await me.Content.ReadAsStringAsync());
        Assert.Equal(1, json.RootElement.GetProperty("requests").GetInt64());
        var usage = json.RootElement.GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens").GetInt64() > 0);
        Assert.InRange(usage.GetProperty("completion_tokens").GetInt64(), 1, 3);
        using var models = await second.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models", adminKey));
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
    }
}
