using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// A JSON member given twice is refused on every route that reads a body: which of the two a parser
/// keeps differs between parsers, so a proxy or filter in front could check one value while Bastion
/// acts on the other.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class JsonBodyTests(SiloFixture fixture)
{
    public enum Caller
    {
        Anonymous,
        User,
        Admin,
    }

    // {id}: a user made for the case; {key}: that user's API key. The repeated values are identical, so
    // only the repetition itself can be the reason for the refusal.
    public static TheoryData<string, string, string, Caller, string> Cases => new()
    {
        { "POST", "/v1/completions", """{"model":"bastion-tiny-gpt2","model":"bastion-tiny-gpt2","prompt":"hi","max_tokens":1}""", Caller.User, "model" },
        { "POST", "/v1/completions", """{"model":"bastion-tiny-gpt2","prompt":"hi","prompt":"hi","max_tokens":1}""", Caller.User, "prompt" },
        { "POST", "/v1/completions", """{"model":"bastion-tiny-gpt2","prompt":"hi","max_tokens":1,"max_tokens":1}""", Caller.User, "max_tokens" },
        { "POST", "/v1/completions", """{"model":"bastion-tiny-gpt2","prompt":"hi","max_tokens":1,"stream":true,"stream_options":{"include_usage":true,"include_usage":true}}""", Caller.User, "stream_options.include_usage" },
        { "POST", "/v1/chat/completions", """{"model":"bastion-tiny-gpt2","messages":[{"role":"user","content":"hi"}],"messages":[{"role":"user","content":"hi"}],"max_tokens":1}""", Caller.User, "messages" },
        { "POST", "/v1/chat/completions", """{"model":"bastion-tiny-gpt2","messages":[{"role":"user","role":"user","content":"hi"}],"max_tokens":1}""", Caller.User, "messages[0].role" },
        { "POST", "/admin/users", """{"id":"{id}-new","roles":["user"],"roles":["user"]}""", Caller.Admin, "roles" },
        { "PUT", "/admin/users/{id}/roles", """{"roles":["user"],"roles":["user"]}""", Caller.Admin, "roles" },
        { "POST", "/admin/users/{id}/api-keys", """{"label":"ci","label":"ci"}""", Caller.Admin, "label" },
        { "PUT", "/admin/users/{id}/limits", """{"concurrency":2,"concurrency":2}""", Caller.Admin, "concurrency" },
        { "POST", "/v1/auth/token", """{"api_key":"{key}","api_key":"{key}"}""", Caller.Anonymous, "api_key" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Body_WithARepeatedMember_GetsInvalidRequestProblemNamingIt(string method, string path, string body, Caller caller, string member)
    {
        var id = "dup-" + Guid.NewGuid().ToString("N")[..12];
        var key = await fixture.Silo.CreateUserWithKeyAsync(id, "user");
        var bearer = caller switch
        {
            Caller.User => key,
            Caller.Admin => fixture.Silo.AdminKey,
            _ => null,
        };
        using var request = TestSilo.Request(new HttpMethod(method), path.Replace("{id}", id, StringComparison.Ordinal), bearer);
        request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body.Replace("{id}", id, StringComparison.Ordinal).Replace("{key}", key, StringComparison.Ordinal)));
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await fixture.Silo.Http.SendAsync(request);

        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(text);
        Assert.Equal("urn:bastion:problem:invalid-request", problem.RootElement.GetProperty("type").GetString());
        Assert.Contains($"'{member}'", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(problem.RootElement.GetProperty("traceId").GetString()));
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
    }
}
