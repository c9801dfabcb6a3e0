using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Bastion.Diagnostics;
using Bastion.Security;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Users;

/// <summary>
/// Anomaly detection on a real silo, through HTTP, with the shipped defaults: a scripted attacker is suspended or
/// throttled, the action shows in the audit trail and the <c>bastion_anomaly_actions</c> metric, and a normal user is
/// left alone.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class AnomalyDetectionTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task GuessingAKeysSecret_SuspendsItsOwner_AuditedAndCounted()
    {
        using var actions = new AnomalyActions();
        var id = NewId("guessed");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        var guess = WrongSecret(apiKey);

        for (var i = 0; i < 49; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/models", guess));
        }

        Assert.Equal(HttpStatusCode.OK, await StatusAsync(HttpMethod.Get, "/v1/models", apiKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/models", guess));

        // The fiftieth guess within the hour suspended the user: their own key is refused until an admin resumes them.
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/models", apiKey));
        var pseudonym = Pseudonym(id);
        Assert.Contains(await AuditAsync(), entry => entry is { Action: "anomaly.suspend", Actor: "system" } && entry.Target == pseudonym);
        Assert.Equal(1, actions.Count("auth-failures", "suspend"));

        Assert.Equal(HttpStatusCode.NoContent, await StatusAsync(HttpMethod.Post, $"/admin/users/{id}/resume", Silo.AdminKey));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(HttpMethod.Get, "/v1/models", apiKey));
    }

    [Fact]
    public async Task EnumeratingAccountNumbers_ThrottlesTheUserTo429_UntilResumed()
    {
        using var actions = new AnomalyActions();
        var id = NewId("enumerator");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");

        for (var i = 1; i <= 25; i++)
        {
            Assert.Equal(HttpStatusCode.OK, await CompleteAsync(apiKey, $"What is the current balance of account number {i:D4}?"));
        }

        // Throttled to a tenth of 60 requests a minute, with 25 already spent: refused at once.
        Assert.Equal(HttpStatusCode.TooManyRequests, await CompleteAsync(apiKey, "What is the current balance of account number 0026?"));
        var pseudonym = Pseudonym(id);
        Assert.Contains(await AuditAsync(), entry => entry is { Action: "anomaly.throttle", Actor: "system" } && entry.Target == pseudonym);
        Assert.Equal(1, actions.Count("prompt-enumeration", "throttle"));

        // Resuming the user lifts the throttle.
        Assert.Equal(HttpStatusCode.NoContent, await StatusAsync(HttpMethod.Post, $"/admin/users/{id}/resume", Silo.AdminKey));
        Assert.Equal(HttpStatusCode.OK, await CompleteAsync(apiKey, "Thanks, that is all for today."));
    }

    [Fact]
    public async Task NormalUser_VariedPromptsAndOneTypo_IsNeverFlagged()
    {
        using var actions = new AnomalyActions();
        var id = NewId("normal");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        string[] prompts =
        [
            "Write a haiku about autumn leaves falling",
            "What is the capital of Australia again",
            "Draft a polite reminder about the unpaid invoice",
            "Explain recursion to a ten year old child",
            "Plan a vegetarian dinner for six guests",
            "How long should I boil an egg for a runny yolk",
        ];

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(HttpMethod.Get, "/v1/models", WrongSecret(apiKey)));
        foreach (var prompt in prompts)
        {
            Assert.Equal(HttpStatusCode.OK, await CompleteAsync(apiKey, prompt));
        }

        var pseudonym = Pseudonym(id);
        Assert.DoesNotContain(await AuditAsync(), entry => entry.Target == pseudonym && entry.Action.StartsWith("anomaly.", StringComparison.Ordinal));
        Assert.Equal(0, actions.Total);
    }

    // The same key id with another secret. A character in the middle: the last one of the base64url secret carries padding bits.
    private static string WrongSecret(string apiKey) => apiKey[..^10] + (apiKey[^10] == 'A' ? 'B' : 'A') + apiKey[^9..];

    private static string NewId(string name) => $"anomaly-{name}-{Guid.NewGuid():N}";

    private string Pseudonym(string id) => Silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(id);

    private async Task<HttpStatusCode> StatusAsync(HttpMethod method, string path, string bearer)
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(method, path, bearer));
        return response.StatusCode;
    }

    private async Task<HttpStatusCode> CompleteAsync(string apiKey, string prompt)
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt, max_tokens = 1 }));
        return response.StatusCode;
    }

    private async Task<List<AuditLine>> AuditAsync()
    {
        using var response = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/admin/audit?limit=1000", Silo.AdminKey));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return [.. json.RootElement.GetProperty("data").EnumerateArray().Select(e => new AuditLine(
            e.GetProperty("actor").GetString()!, e.GetProperty("action").GetString()!, e.GetProperty("target").GetString()))];
    }

    private sealed record AuditLine(string Actor, string Action, string? Target);

    /// <summary>Listens to <c>bastion_anomaly_actions</c> of this process's silos while the test runs.</summary>
    private sealed class AnomalyActions : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly List<(string Signal, string Action, long Value)> _measurements = [];
        private readonly Lock _gate = new();

        public AnomalyActions()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == BastionMetrics.MeterName && instrument.Name == "bastion_anomaly_actions")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                string? signal = null, action = null;
                foreach (var tag in tags)
                {
                    signal = tag.Key == "signal" ? tag.Value as string : signal;
                    action = tag.Key == "action" ? tag.Value as string : action;
                }

                lock (_gate)
                {
                    _measurements.Add((signal!, action!, value));
                }
            });
            _listener.Start();
        }

        public long Total
        {
            get
            {
                lock (_gate)
                {
                    return _measurements.Sum(m => m.Value);
                }
            }
        }

        public long Count(string signal, string action)
        {
            lock (_gate)
            {
                return _measurements.Where(m => m.Signal == signal && m.Action == action).Sum(m => m.Value);
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
