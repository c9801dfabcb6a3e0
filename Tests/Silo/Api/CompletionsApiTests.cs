using System.Net;
using System.Text.Json;
using Bastion.Inference;
using Bastion.Tests.Grains.Inference;

namespace Bastion.Tests.Silo.Api;

[Collection(SiloCollection.Name)]
public sealed class CompletionsApiTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task Completion_WithApiKey_ReturnsRealInferenceWithExactUsage()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("completion-" + Guid.NewGuid().ToString("N"), "user");

        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Hello", max_tokens = 16, temperature = 0 }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = json.RootElement;
        Assert.Equal("text_completion", root.GetProperty("object").GetString());
        Assert.Equal(Model, root.GetProperty("model").GetString());
        var choice = root.GetProperty("choices")[0];
        var usage = root.GetProperty("usage");
        var tokenizer = TextTokenizer.CreateGpt2();
        Assert.Equal(tokenizer.EncodeToIds("Hello").Length, usage.GetProperty("prompt_tokens").GetInt32());

        // The served text is what an independent run of the same model file, without the KV cache, produces.
        var modelPath = Path.Combine(Silo.DataDirectory, "models", Model, "model.onnx");
        var expected = FullSequenceReference.GreedyTokens(modelPath, tokenizer.EncodeToIds("Hello"), 16, DecoderModel.DefaultEosTokenId);
        Assert.Equal(tokenizer.Decode(expected), choice.GetProperty("text").GetString());
        Assert.Equal(expected.Count, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(expected.Count + 1, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(expected.Count == 16 ? "length" : "stop", choice.GetProperty("finish_reason").GetString());
    }

    // The cap, written down here rather than read from the product: 64 UTF-16 code units per stop string.
    [Theory]
    [InlineData("/v1/completions", 64, false, HttpStatusCode.OK)]
    [InlineData("/v1/completions", 65, false, HttpStatusCode.BadRequest)]
    [InlineData("/v1/completions", 64, true, HttpStatusCode.OK)]
    [InlineData("/v1/completions", 65, true, HttpStatusCode.BadRequest)]
    [InlineData("/v1/chat/completions", 64, true, HttpStatusCode.OK)]
    [InlineData("/v1/chat/completions", 65, true, HttpStatusCode.BadRequest)]
    [InlineData("/v1/completions", 0, true, HttpStatusCode.BadRequest)]
    public async Task Completion_StopStringAtAndOverTheLengthCap_IsServedOrRefusedNamingStop(string path, int length, bool inArray, HttpStatusCode expected)
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("stop-cap-" + Guid.NewGuid().ToString("N"), "user");
        var stopString = new string('~', length);
        object stop = inArray ? new[] { "\n\n", stopString } : stopString;
        object body = path == "/v1/completions"
            ? new { model = Model, prompt = "Hello", max_tokens = 2, stop }
            : new { model = Model, messages = new[] { new { role = "user", content = "Hello" } }, max_tokens = 2, stop };

        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, path, apiKey, body));

        Assert.Equal(expected, response.StatusCode);
        if (expected == HttpStatusCode.BadRequest)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("urn:bastion:problem:invalid-request", problem.RootElement.GetProperty("type").GetString());
            Assert.Contains("'stop'", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Completion_WithAccessTokenFromApiKey_Succeeds()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("jwt-" + Guid.NewGuid().ToString("N"), "user");

        using var exchange = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/auth/token", null, new { api_key = apiKey }));
        Assert.Equal(HttpStatusCode.OK, exchange.StatusCode);
        using var tokenJson = JsonDocument.Parse(await exchange.Content.ReadAsStringAsync());
        var accessToken = tokenJson.RootElement.GetProperty("access_token").GetString()!;
        Assert.Equal("Bearer", tokenJson.RootElement.GetProperty("token_type").GetString());
        Assert.InRange(tokenJson.RootElement.GetProperty("expires_in").GetInt32(), 1, 900);

        using var completion = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", accessToken, new { model = Model, prompt = "Hi there", max_tokens = 4 }));
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);

        using var me = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", accessToken));

        using var meJson = JsonDocument.Parse(await me.Content.ReadAsStringAsync());
        Assert.Equal(1, meJson.RootElement.GetProperty("requests").GetInt64());
        Assert.InRange(meJson.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt64(), 1, 4);
    }

    [Fact]
    public async Task Models_ListsTheDefaultModel()
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/models", Silo.AdminKey));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("list", json.RootElement.GetProperty("object").GetString());
        Assert.Contains(json.RootElement.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == Model);
    }

    [Fact]
    public async Task Credentials_ThatFail_AllGetTheIdenticalProblemApartFromTraceId()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("bad-creds-" + Guid.NewGuid().ToString("N"), "user");
        var wrongSecret = apiKey[..^4] + (apiKey.EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA");
        string?[] bearers = [null, "", "bst_nope", wrongSecret, "bst_" + new string('0', 24) + "_" + apiKey[^43..], "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "not-a-token"];

        await Silo.AssertIdenticalUnauthorizedAsync(bearers);
    }

    [Fact]
    public async Task AdminRoutes_RefuseAUserWithoutTheAdminRole()
    {
        var apiKey = await Silo.CreateUserWithKeyAsync("plain-" + Guid.NewGuid().ToString("N"), "user");

        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", apiKey, new { id = "intruder-" + Guid.NewGuid().ToString("N"), roles = new[] { "admin" } }));

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task CreateUser_Twice_IsAConflict()
    {
        var id = "twice-" + Guid.NewGuid().ToString("N");
        using var first = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", Silo.AdminKey, new { id, roles = new[] { "user" } }));
        using var second = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", Silo.AdminKey, new { id, roles = new[] { "user" } }));

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
    }

    [Fact]
    public async Task Health_AnswersLiveAndReady()
    {
        using var live = await Silo.Http.GetAsync("/healthz");
        using var ready = await Silo.Http.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("{\"status\":\"Healthy\"}", await ready.Content.ReadAsStringAsync());

        // Details, such as each model's execution provider, are for admins only.
        var user = await Silo.CreateUserWithKeyAsync("ready-" + Guid.NewGuid().ToString("N"), "user");
        using var asUser = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/readyz", user));
        Assert.Equal("{\"status\":\"Healthy\"}", await asUser.Content.ReadAsStringAsync());
        using var asAdmin = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/readyz", Silo.AdminKey));
        using var details = JsonDocument.Parse(await asAdmin.Content.ReadAsStringAsync());
        Assert.Equal("Cpu", details.RootElement.GetProperty("checks").GetProperty("models").GetProperty(Model).GetString());
        Assert.Equal("Healthy", details.RootElement.GetProperty("checks").GetProperty("database").GetProperty("status").GetString());
    }
}
