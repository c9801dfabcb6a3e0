using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Xunit.Abstractions;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// Three silo processes on loopback under load; one is killed with SIGKILL three times (a replacement joins after
/// each kill). No acknowledged change is lost, the limit still holds, generations on the dead silo end with a
/// retryable error, and the cluster recovers within its membership timeouts.
/// </summary>
[Collection(SiloCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class FailoverTests(SiloFixture fixture, ITestOutputHelper output)
{
    private const string Model = "bastion-tiny-gpt2";
    private const int Limit = 40;

    /// <summary>
    /// Detection in a few seconds: a silo missing 2 probes of 1 s, with one vote, is declared dead. On two busy
    /// cores healthy silos still answer probes well within a second.
    /// </summary>
    private static readonly Dictionary<string, string> Membership = new()
    {
        ["Bastion__Cluster__Membership__ProbeTimeout"] = "00:00:01",
        ["Bastion__Cluster__Membership__NumMissedProbesLimit"] = "2",
        ["Bastion__Cluster__Membership__NumVotesForDeathDeclaration"] = "1",
        ["Bastion__Cluster__Membership__TableRefreshTimeout"] = "00:00:02",
        ["Bastion__Cluster__Messaging__ResponseTimeout"] = "00:00:10",
    };

    /// <summary>The longest a recovery may take: detection (2 × 1 s probes), a table refresh (2 s), and slack for two cores.</summary>
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task KillingASiloThreeTimesUnderLoad_LosesNoAcknowledgedState_AndRecovers()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var environment = new Dictionary<string, string>(Membership)
        {
            ["ConnectionStrings__Bastion"] = database.State,
            ["ConnectionStrings__BastionKeys"] = database.KeyStore,
            // One data directory for every member: the first creates the keyring, development CA, model and
            // bootstrap key; the others read them. The databases are external, so nothing else is shared.
            ["Bastion__Node__DataDirectory"] = directory,
            ["Bastion__Node__ClusterId"] = "failover-" + Guid.NewGuid().ToString("N"),
            ["Bastion__Inference__IntraOpThreads"] = "1",
            ["Bastion__Http__TokenExchangesPerMinutePerAddress"] = "100000",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var silos = new List<SiloProcess> { await SiloProcess.StartAsync("s0", environment) };
        silos.AddRange(await Task.WhenAll(SiloProcess.StartAsync("s1", environment), SiloProcess.StartAsync("s2", environment)));
        var adminKey = (await File.ReadAllTextAsync(Path.Combine(directory, "admin-api-key"))).Trim();
        try
        {
            var load = await CreateUserAsync(silos[0], adminKey, "load", new { concurrency = 1000, requests = new { algorithm = "token_bucket", limit = 100000, window_seconds = 60 }, tokens = new { algorithm = "token_bucket", limit = 10000000, window_seconds = 60 } });
            var limited = await CreateUserAsync(silos[0], adminKey, "limited", new { concurrency = 1000, requests = new { algorithm = "sliding_window", limit = Limit, window_seconds = 86400 } });
            var probes = new List<string>();
            for (var i = 0; i < 6; i++)
            {
                probes.Add((await CreateUserAsync(silos[i % 3], adminKey, "probe", new { concurrency = 1000 })).ApiKey);
            }

            var alive = new ConcurrentDictionary<string, SiloProcess>(silos.ToDictionary(s => s.Name));
            var outcomes = new ConcurrentBag<Outcome>();
            var acknowledgedUsers = new ConcurrentBag<(string Id, string ApiKey)>();
            using var stop = new CancellationTokenSource();
            var clients = new List<Task>
            {
                AdminWriterAsync(alive, adminKey, acknowledgedUsers, stop.Token),
                LimitedClientAsync(alive, limited.ApiKey, outcomes, stop.Token),
                StreamClientAsync(alive, load.ApiKey, outcomes, stop.Token),
            };
            clients.AddRange(Enumerable.Range(0, 3).Select(_ => CompletionClientAsync(alive, load.ApiKey, outcomes, stop.Token)));

            var recoveries = new List<TimeSpan>();
            for (var kill = 0; kill < 3; kill++)
            {
                var victim = alive.Values.OrderBy(s => s.Name, StringComparer.Ordinal).First();
                alive.TryRemove(victim.Name, out _);
                var killedAt = Stopwatch.StartNew();
                victim.Kill();
                recoveries.Add(await RecoveryAsync(alive.Values.ToList(), probes, killedAt));
                output.WriteLine($"kill {kill + 1}: {victim.Name} killed, requests succeed again after {recoveries[^1].TotalSeconds:F1} s");

                var replacement = await SiloProcess.StartAsync($"r{kill}", environment);
                silos.Add(replacement);
                alive[replacement.Name] = replacement;
            }

            // The last replacement joined as a worker: once it is in the cluster, it receives generations.
            var newest = silos[^1];
            var served = await WaitForGenerationsAsync(newest, adminKey);
            output.WriteLine($"{newest.Name} generated {served} tokens after joining");

            await stop.CancelAsync();
            await Task.WhenAll(clients);

            // Every change acknowledged with a 2xx is there: each user, and each key (it still authenticates).
            var any = alive.Values.First();
            var lost = 0;
            foreach (var (id, apiKey) in acknowledgedUsers)
            {
                using var user = await any.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{id}", adminKey));
                using var me = await any.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", apiKey));
                lost += user.StatusCode == HttpStatusCode.OK && me.StatusCode == HttpStatusCode.OK ? 0 : 1;
            }

            // Every acknowledged grant of the limited user is in its persisted count, and there are never more than N.
            var granted = outcomes.Count(o => o.Client == "limited" && o.Status == HttpStatusCode.OK);
            var admitted = await AdmittedAsync(any, adminKey, limited.Id);
            lost += (int)Math.Max(0, granted - admitted);

            var answered = outcomes.Where(o => o.Status != 0).ToList();
            output.WriteLine($"acknowledged users {acknowledgedUsers.Count}; limited user: {granted} granted, {admitted} admitted, limit {Limit}");
            output.WriteLine("answers: " + string.Join(", ", answered.GroupBy(o => $"{o.Client} {(int)o.Status} {o.Problem}").OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}: {g.Count()}")));
            output.WriteLine($"requests cut by the kill (connection to the dead silo): {outcomes.Count(o => o.Status == 0)}");
            var sorted = recoveries.Order().ToList();
            output.WriteLine($"recovery after kill (s): {string.Join(", ", recoveries.Select(r => r.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)))}; median {sorted[1].TotalSeconds:F1} s");
            output.WriteLine($"acknowledged requests lost: {lost}");

            Assert.Equal(0, lost);
            Assert.NotEmpty(acknowledgedUsers);
            Assert.InRange(admitted, 1, Limit);
            Assert.All(recoveries, r => Assert.True(r < RecoveryBound, $"Recovery took {r}."));
            Assert.True(served > 0, "The new worker silo generated nothing.");

            // Every answer from a live silo is a success, the limit, or a retryable 503: never an internal error.
            Assert.All(answered, o => Assert.True(
                o.Status == HttpStatusCode.OK
                || (o.Status == HttpStatusCode.TooManyRequests && o.Client == "limited")
                || (o.Status == HttpStatusCode.ServiceUnavailable && o.Problem == "urn:bastion:problem:unavailable" && o.RetryAfter),
                $"{o.Client}: {(int)o.Status} {o.Problem}"));
            Assert.Contains(answered, o => o.Client == "complete" && o.Status == HttpStatusCode.OK);
        }
        finally
        {
            foreach (var silo in silos.Where(s => !s.Killed))
            {
                await silo.DisposeAsync();
            }
        }
    }

    private sealed record Outcome(string Client, HttpStatusCode Status, string? Problem, bool RetryAfter);

    /// <summary>The time from the kill until a completion for each probe user, through each surviving silo, succeeds.</summary>
    private static async Task<TimeSpan> RecoveryAsync(List<SiloProcess> survivors, List<string> probes, Stopwatch killedAt)
    {
        while (true)
        {
            var round = await Task.WhenAll(probes.Select(async (apiKey, i) =>
            {
                try
                {
                    using var response = await survivors[i % survivors.Count].Http.SendAsync(
                        TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Probe", max_tokens = 2 }));
                    return response.StatusCode == HttpStatusCode.OK;
                }
                catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            }));
            if (round.All(ok => ok))
            {
                return killedAt.Elapsed;
            }

            Assert.True(killedAt.Elapsed < TimeSpan.FromSeconds(60), "The cluster did not recover within 60 seconds.");
            await Task.Delay(100);
        }
    }

    private static SiloProcess Pick(ConcurrentDictionary<string, SiloProcess> alive) => alive.Values.ElementAt(Random.Shared.Next(alive.Count));

    private static async Task CompletionClientAsync(ConcurrentDictionary<string, SiloProcess> alive, string apiKey, ConcurrentBag<Outcome> outcomes, CancellationToken stop)
    {
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            outcomes.Add(await SendAsync(Pick(alive), "complete", TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Load " + i, max_tokens = 16 })));
        }
    }

    private static async Task LimitedClientAsync(ConcurrentDictionary<string, SiloProcess> alive, string apiKey, ConcurrentBag<Outcome> outcomes, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            outcomes.Add(await SendAsync(Pick(alive), "limited", TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Limited", max_tokens = 1 })));
            // Paced, so that the window's grants spread over the kills rather than all landing before the first.
            await Task.Delay(250, CancellationToken.None);
        }
    }

    /// <summary>Streams long completions; one cut by a dead worker must end with a retryable error event.</summary>
    private static async Task StreamClientAsync(ConcurrentDictionary<string, SiloProcess> alive, string apiKey, ConcurrentBag<Outcome> outcomes, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var silo = Pick(alive);
            try
            {
                using var response = await silo.Http.SendAsync(
                    TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Go", max_tokens = 400, temperature = 0, stream = true }),
                    HttpCompletionOption.ResponseHeadersRead, CancellationToken.None);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    outcomes.Add(await OutcomeAsync("stream", response));
                    continue;
                }

                var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
                var error = body.IndexOf("event: error\ndata: ", StringComparison.Ordinal);
                if (error < 0)
                {
                    outcomes.Add(new Outcome("stream", body.EndsWith("data: [DONE]\n\n", StringComparison.Ordinal) ? HttpStatusCode.OK : 0, null, false));
                    continue;
                }

                var data = body[(error + "event: error\ndata: ".Length)..];
                using var problem = JsonDocument.Parse(data[..data.IndexOf('\n', StringComparison.Ordinal)]);
                outcomes.Add(new Outcome("stream", (HttpStatusCode)problem.RootElement.GetProperty("status").GetInt32(), problem.RootElement.GetProperty("type").GetString(), RetryAfter: true));
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException or IOException && silo.Killed)
            {
                outcomes.Add(new Outcome("stream", 0, null, false));
            }
        }
    }

    /// <summary>Creates users and keys one after another; those acknowledged with 201 must all be readable at the end.</summary>
    private static async Task AdminWriterAsync(
        ConcurrentDictionary<string, SiloProcess> alive, string adminKey, ConcurrentBag<(string Id, string ApiKey)> acknowledged, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var silo = Pick(alive);
            var id = "acked-" + Guid.NewGuid().ToString("N");
            try
            {
                using var created = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", adminKey, new { id, roles = new[] { "user" } }), CancellationToken.None);
                if (created.StatusCode != HttpStatusCode.Created)
                {
                    continue;
                }

                using var issued = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{id}/api-keys", adminKey, new { label = "failover" }), CancellationToken.None);
                if (issued.StatusCode == HttpStatusCode.Created)
                {
                    using var json = JsonDocument.Parse(await issued.Content.ReadAsStringAsync(CancellationToken.None));
                    acknowledged.Add((id, json.RootElement.GetProperty("api_key").GetString()!));
                }
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
            {
                // Not acknowledged: nothing is promised about it.
            }
        }
    }

    private static async Task<Outcome> SendAsync(SiloProcess silo, string client, HttpRequestMessage request)
    {
        try
        {
            using var response = await silo.Http.SendAsync(request);
            return await OutcomeAsync(client, response);
        }
        catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException && silo.Killed)
        {
            return new Outcome(client, 0, null, false);
        }
    }

    private static async Task<Outcome> OutcomeAsync(string client, HttpResponseMessage response)
    {
        string? problem = null;
        if (response.Content.Headers.ContentType?.MediaType == "application/problem+json")
        {
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            problem = json.RootElement.GetProperty("type").GetString();
        }

        return new Outcome(client, response.StatusCode, problem, response.Headers.RetryAfter is not null);
    }

    private static async Task<(string Id, string ApiKey)> CreateUserAsync(SiloProcess silo, string adminKey, string prefix, object limits)
    {
        var id = prefix + "-" + Guid.NewGuid().ToString("N");
        using var created = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/admin/users", adminKey, new { id, roles = new[] { "user" } }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var issued = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, $"/admin/users/{id}/api-keys", adminKey, new { label = "failover" }));
        Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
        using var set = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{id}/limits", adminKey, limits));
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        using var json = JsonDocument.Parse(await issued.Content.ReadAsStringAsync());
        return (id, json.RootElement.GetProperty("api_key").GetString()!);
    }

    private static async Task<long> AdmittedAsync(SiloProcess silo, string adminKey, string id)
    {
        using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, $"/admin/users/{id}", adminKey));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("requests").GetInt64();
    }

    /// <summary>The completion tokens a silo's own engine generated, from its <c>/metrics</c>, once there are any.</summary>
    private static async Task<double> WaitForGenerationsAsync(SiloProcess silo, string adminKey)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            using var response = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/metrics", adminKey));
            var total = (await response.Content.ReadAsStringAsync()).Split('\n')
                .Where(line => line.StartsWith("bastion_completion_tokens", StringComparison.Ordinal))
                .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
            if (total > 0 || waited.Elapsed > TimeSpan.FromSeconds(30))
            {
                return total;
            }

            await Task.Delay(200);
        }
    }
}
