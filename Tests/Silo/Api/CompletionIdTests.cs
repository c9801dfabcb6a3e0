using System.Net;
using System.Text.Json;
using Bastion.Generation;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Api;

/// <summary>The <c>cmpl-</c> id an HTTP client sees is a random value of its own, never the generation's grain key.</summary>
[Collection(SiloCollection.Name)]
public sealed class CompletionIdTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    [Fact]
    public async Task StreamedCompletion_PublicId_IsNotTheKeyOfTheRunningGeneration()
    {
        var silo = fixture.Silo;
        var apiKey = await silo.CreateUserWithKeyAsync($"public-id-{Guid.NewGuid():N}", "user");

        // A long stream left unread keeps its generation activated while the id is compared.
        using var response = await silo.Http.SendAsync(
            TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Go", max_tokens = 1000, temperature = 0, stream = true }),
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var line = await reader.ReadLineAsync();
        using var chunk = JsonDocument.Parse(line!["data: ".Length..]);
        var publicId = chunk.RootElement.GetProperty("id").GetString()!;
        Assert.Matches("^cmpl-[0-9a-f]{32}$", publicId);

        var grains = silo.Services.GetRequiredService<IGrainFactory>();
        var generations = (await grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics())
            .Where(statistic => statistic.GrainId.Type.ToString() == "bastion.generation")
            .Select(statistic => statistic.GrainId)
            .ToList();
        Assert.NotEmpty(generations);
        Assert.DoesNotContain(grains.GetGrain<IGenerationGrain>(Guid.ParseExact(publicId["cmpl-".Length..], "N")).GetGrainId(), generations);
    }
}
