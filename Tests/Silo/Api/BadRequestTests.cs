using System.Net;
using System.Text;
using System.Text.Json;

namespace Bastion.Tests.Silo.Api;

/// <summary>Malformed, oversized and wrong-typed requests get a 4xx problem and nothing internal.</summary>
[Collection(SiloCollection.Name)]
public sealed class BadRequestTests(SiloFixture fixture)
{
    private static readonly string[] InternalMarkers = ["System.", "Exception", "   at ", "/work/", "/tmp/", "SELECT", "Npgsql", "Orleans", "Bastion."];

    public static TheoryData<string, string, string?, HttpStatusCode, string> Cases => new()
    {
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": ", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "[1, 2, 3]", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "null", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"max_tokens\": \"many\"}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": 42}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"max_tokens\": 0}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"max_tokens\": 99999999999}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"max_tokens\": 5000}", "application/json", HttpStatusCode.BadRequest, "context-length-exceeded" },
        { "/v1/completions", "{\"model\": \"no-such-model\", \"prompt\": \"hi\"}", "application/json", HttpStatusCode.NotFound, "model-not-found" },
        { "/v1/completions", "{\"prompt\": \"hi\"}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "model=x", "application/x-www-form-urlencoded", HttpStatusCode.UnsupportedMediaType, "unsupported-media-type" },
        { "/v1/completions", "{}", null, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"temperature\": 2.5}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"temperature\": -0.1}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"top_p\": 0}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"top_p\": 1.5}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"top_k\": -1}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"stop\": 42}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"stop\": \"\"}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/completions", "{\"model\": \"bastion-tiny-gpt2\", \"prompt\": \"hi\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/chat/completions", "{\"model\": \"bastion-tiny-gpt2\", \"messages\": []}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/chat/completions", "{\"model\": \"bastion-tiny-gpt2\", \"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/chat/completions", "{\"model\": \"bastion-tiny-gpt2\", \"messages\": [{\"role\": \"user\"}]}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/admin/users", "{\"id\": \"../../etc/passwd\"}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/admin/users", "{\"id\": \"ok-id\", \"roles\": [\"root\"]}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/admin/users", "{\"id\": 7}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
        { "/v1/auth/token", "{\"api_key\": {\"$ne\": null}}", "application/json", HttpStatusCode.BadRequest, "invalid-request" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadBody_GetsProblemJsonWithStableTypeAndNothingInternal(string path, string body, string? contentType, HttpStatusCode expected, string type)
    {
        using var request = TestSilo.Request(HttpMethod.Post, path, fixture.Silo.AdminKey);
        request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        if (contentType is not null)
        {
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        using var response = await fixture.Silo.Http.SendAsync(request);

        await AssertProblemAsync(response, expected, type);
    }

    [Fact]
    public async Task OversizedBody_Gets413Problem()
    {
        var prompt = new string('a', 300 * 1024);
        using var request = TestSilo.Request(HttpMethod.Post, "/v1/completions", fixture.Silo.AdminKey, new { model = "bastion-tiny-gpt2", prompt });

        using var response = await fixture.Silo.Http.SendAsync(request);

        await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "payload-too-large");
    }

    [Fact]
    public async Task UnknownRoute_GetsNotFoundProblem()
    {
        using var response = await fixture.Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/nothing-here", fixture.Silo.AdminKey));

        await AssertProblemAsync(response, HttpStatusCode.NotFound, "not-found");
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode expected, string type)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(expected, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        Assert.Equal("urn:bastion:problem:" + type, json.RootElement.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("traceId").GetString()));
        Assert.DoesNotContain(InternalMarkers, marker => text.Contains(marker, StringComparison.Ordinal));
    }
}
