using System.Net;
using Bastion.Access;
using Bastion.Api;
using Bastion.Generation;
using Bastion.Limits;
using Bastion.Tests.Grains;
using Bastion.Tests.Silo.Cluster;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Tests.Silo.Users;

/// <summary>
/// The concurrency lease a generation holds in its user's grain, on a real silo whose clock is a fake one
/// (<see cref="CountingTimeProvider"/>, registered as the silo's <see cref="TimeProvider"/>), with a user allowed one
/// generation at a time. The README is the specification: leases "are renewed every third of their duration while the
/// generation runs", a stream whose client "reads nothing for SetAsideTimeoutSeconds" ends and is settled, and "the HTTP
/// API and client library cancel a generation when a read fails". No test here sleeps: the fake clock moves only when a
/// test advances it, and <see cref="GrainCallProbe"/> says when the silo has acted on it. (Orleans' own health monitors
/// read the same clock, so they log stalls when it jumps; a single silo has nobody to vote it dead.)
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class GenerationLeaseTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";

    /// <summary>Greedy "Go" meets no end of text within 1000 tokens, so only the test ends these generations.</summary>
    private static readonly GenerationRequest Endless = new(Model, "Go", 1000, Overrides: new SamplingOverrides(Temperature: 0));

    private static readonly GenerationRequest Short = new(Model, "Hi", 1);

    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(213);
    private static readonly TimeSpan RenewalInterval = Lease / 3;
    private static readonly TimeSpan SetAsideTimeout = TimeSpan.FromSeconds(127);

    /// <summary>
    /// How long an idle engine waits (on the fake clock) for company before its first decode step: a hold during which a
    /// test can see a cancel land before anything is decoded. Odd values, so that no other timer of the silo is taken
    /// for one of these.
    /// </summary>
    private static readonly TimeSpan BatchWait = TimeSpan.FromMilliseconds(9973);

    [Fact]
    public async Task SlowlyReadGeneration_KeepsItsLeasePastTheLeaseDuration_AndFreesItWhenItsReaderStopsReading()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var (silo, time, probe) = await StartSiloAsync(database, directory, new()
        {
            ["Bastion:Limits:LeaseDuration"] = "00:03:33",
            ["Bastion:Inference:Batching:SetAsideTimeoutSeconds"] = "127",
        });
        await using var _ = silo;
        var (user, credential) = await NewUserAsync(silo, "lease");

        var started = await user.SubmitAsync(credential, Endless);
        var id = started.GenerationId ?? throw new InvalidOperationException($"not admitted: {started.Decision.Reason}");
        var generation = silo.Services.GetRequiredService<IGrainFactory>().GetGrain<IGenerationGrain>(id);

        // The reader takes a few pieces; the generation fills its buffer and is set aside for its slow reader.
        var next = (await generation.ReadAsync(0, 8)).Pieces.Count;
        await time.WaitForTimersDueAfterAsync(SetAsideTimeout, 1, "set aside for its slow reader");
        await AssertConcurrencyRefusedAsync(user, credential);

        // A renewal interval at a time, past the whole lease duration: each interval the lease is renewed, and the reader
        // reads on (so the set-aside timeout, longer than an interval, never runs out).
        for (var renewal = 1; renewal <= 4; renewal++)
        {
            time.Advance(RenewalInterval);
            var renewed = await probe.WaitForAsync(c => c.Is<IUserGrain>(nameof(IUserGrain.RenewLeaseAsync)) && c.Returned && Equals(c.Arguments[0], id), $"renewal {renewal}", renewal);
            Assert.Equal(true, renewed.Result);

            var setAside = time.TimersDueAfter(SetAsideTimeout);
            next += (await generation.ReadAsync(next, 64)).Pieces.Count;
            await time.WaitForTimersDueAfterAsync(SetAsideTimeout, setAside + 1, $"set aside again after read {renewal}");
        }

        Assert.True(4 * RenewalInterval > Lease);
        await AssertConcurrencyRefusedAsync(user, credential);

        // The reader stops reading: once the set-aside timeout runs out, the generation ends, settles, and frees the slot.
        time.Advance(SetAsideTimeout);
        var settled = await probe.WaitForAsync(c => c.Is<IUserGrain>(nameof(IUserGrain.SettleAsync)) && c.Returned && Equals(c.Arguments[0], id), "settlement after the set-aside timeout");
        Assert.InRange(((TokenUsage)settled.Arguments[1]!).CompletionTokens, 1, 999);
        var after = await user.SubmitAsync(credential, Short);
        Assert.True(after.GenerationId is not null, $"a new generation was refused: {after.Decision.Reason}");
    }

    [Fact]
    public async Task ReaderThatGoesAway_CancelsItsGeneration_AndFreesTheSlot_OverHttpAndThroughTheClientLibrary()
    {
        var (database, directory) = await fixture.CreateDatabaseAsync();
        var service = ServiceKeyPair.Create(directory, "svc-leases");
        var settings = ServiceKeyPair.Settings(service);
        settings["Bastion:Inference:Batching:MaxWaitMilliseconds"] = ((int)BatchWait.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (silo, time, probe) = await StartSiloAsync(database, directory, settings);
        await using var _ = silo;
        var held = 0;

        // HTTP, waiting for the whole completion: the client gives up while the generation waits for its first step.
        var userId = $"http-{Guid.NewGuid():N}";
        var apiKey = await silo.CreateUserWithKeyAsync(userId, "user");
        await LimitToOneAsync(silo, userId);
        using (var gaveUp = new CancellationTokenSource())
        {
            var pending = silo.Http.SendAsync(CompletionRequest(apiKey, 1000), gaveUp.Token);
            var waiting = await probe.WaitForAsync(c => c.Is<IGenerationGrain>(nameof(IGenerationGrain.GetResultAsync)) && !c.Returned, "the edge waiting for the result");
            await gaveUp.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
            await AssertCancelledBeforeDecodingAsync(time, probe, waiting.GuidKey, nameof(IGenerationGrain.CancelAsync), ++held);
        }

        var admitted = silo.Http.SendAsync(CompletionRequest(apiKey, 1));
        await time.WaitForTimersDueAfterAsync(BatchWait, ++held, "the next completion waiting for its first step");
        time.Advance(BatchWait);
        using (var response = await admitted)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // The client library, whole and streamed: the caller's token is cancelled while the client waits on a read.
        // Service tokens carry real times, so the silo's clock is brought up to the real one first.
        time.SetUtcNow(DateTimeOffset.UtcNow > time.GetUtcNow() ? DateTimeOffset.UtcNow : time.GetUtcNow());
        await silo.CreateUserWithKeyAsync(service.Name, "user");
        await LimitToOneAsync(silo, service.Name);
        await using var client = await ServiceClientHost.StartAsync(silo, service);
        Func<CancellationToken, Task>[] readers =
        [
            token => client.Client.CompleteAsync(Endless, cancellationToken: token),
            async token =>
            {
                await foreach (var piece in client.Client.StreamAsync(Endless, cancellationToken: token))
                {
                    Assert.Fail($"a piece was decoded before the cancel: {piece}");
                }
            },
        ];
        var readBefore = new HashSet<Guid>();
        for (var reader = 0; reader < readers.Length; reader++)
        {
            using var gaveUp = new CancellationTokenSource();
            var reading = readers[reader](gaveUp.Token);
            var read = await probe.WaitForAsync(
                c => c.Is<IGenerationGrain>(nameof(IGenerationGrain.ReadOwnedAsync)) && !c.Returned && !readBefore.Contains(c.GuidKey), $"client reader {reader} waiting for pieces");
            readBefore.Add(read.GuidKey);
            await gaveUp.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
            var cancelled = await AssertCancelledBeforeDecodingAsync(time, probe, read.GuidKey, nameof(IGenerationGrain.CancelOwnedAsync), ++held);
            Assert.Equal(true, cancelled.Result);
        }

        var next = client.Client.CompleteAsync(Short);
        var holding = time.WaitForTimersDueAfterAsync(BatchWait, ++held, "the client's next completion waiting for its first step");
        if (await Task.WhenAny(next, holding) == next)
        {
            await next;
        }

        await holding;
        time.Advance(BatchWait);
        Assert.Equal(1, (await next).Usage.CompletionTokens);
    }

    /// <summary>
    /// The generation <paramref name="id"/> receives <paramref name="cancel"/>; once its engine's wait for company (the
    /// <paramref name="hold"/>th) passes, it stops within one decode step (DESIGN.md: "cancellation within one decode
    /// step"): it settles having decoded at most the prefill's token and one step's, and that frees the slot.
    /// </summary>
    private static async Task<ProbedCall> AssertCancelledBeforeDecodingAsync(CountingTimeProvider time, GrainCallProbe probe, Guid id, string cancel, int hold)
    {
        var cancelled = await probe.WaitForAsync(c => c.Is<IGenerationGrain>(cancel) && c.Returned && c.GuidKey == id, $"{cancel} on the generation whose reader went away");
        await time.WaitForTimersDueAfterAsync(BatchWait, hold, "the generation waiting for its first step");
        time.Advance(BatchWait);
        var settled = await probe.WaitForAsync(c => c.Is<IUserGrain>(nameof(IUserGrain.SettleAsync)) && c.Returned && Equals(c.Arguments[0], id), "the cancelled generation's settlement");
        Assert.InRange(((TokenUsage)settled.Arguments[1]!).CompletionTokens, 0, 2);
        return cancelled;
    }

    private static HttpRequestMessage CompletionRequest(string apiKey, int maxTokens) =>
        TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = "Go", max_tokens = maxTokens, temperature = 0 });

    /// <summary>Starts a silo with a fake clock and a call probe.</summary>
    private static async Task<(TestSilo Silo, CountingTimeProvider Time, GrainCallProbe Probe)> StartSiloAsync(
        SiloDatabases database, string directory, Dictionary<string, string?> settings)
    {
        var time = new CountingTimeProvider(DateTimeOffset.UtcNow);
        var probe = new GrainCallProbe();

        var silo = await TestSilo.StartAsync(database, directory, settings, builder =>
        {
            builder.Services.AddSingleton<TimeProvider>(time);
            builder.Services.AddSingleton<IIncomingGrainCallFilter>(probe);
        });
        return (silo, time, probe);
    }

    /// <summary>A user allowed one generation at a time (and plenty of everything else), and the credential of their API key.</summary>
    private static async Task<(IUserGrain User, Credential Credential)> NewUserAsync(TestSilo silo, string prefix)
    {
        var id = $"{prefix}-{Guid.NewGuid():N}";
        var apiKey = await silo.CreateUserWithKeyAsync(id, "user");
        await LimitToOneAsync(silo, id);
        var caller = await silo.Services.GetRequiredService<CallerAuthenticator>().AuthenticateApiKeyAsync(new Microsoft.AspNetCore.Http.DefaultHttpContext(), apiKey)
            ?? throw new InvalidOperationException("The new key does not authenticate.");
        return (silo.Services.GetRequiredService<IGrainFactory>().GetGrain<IUserGrain>(caller.Pseudonym), caller.Credential);
    }

    private static async Task LimitToOneAsync(TestSilo silo, string userId)
    {
        using var limits = await silo.Http.SendAsync(TestSilo.Request(HttpMethod.Put, $"/admin/users/{userId}/limits", silo.AdminKey, new
        {
            concurrency = 1,
            requests = new { algorithm = "token_bucket", limit = 100000, window_seconds = 60 },
            tokens = new { algorithm = "token_bucket", limit = 100000000, window_seconds = 60 },
        }));
        Assert.Equal(HttpStatusCode.OK, limits.StatusCode);
    }

    private static async Task AssertConcurrencyRefusedAsync(IUserGrain user, Credential credential)
    {
        var refused = await user.SubmitAsync(credential, Short);
        Assert.Null(refused.GenerationId);
        Assert.Equal(DenialReason.LimitExceeded, refused.Decision.Reason);
        Assert.Equal(LimitKind.Concurrency, refused.Limit?.Kind);
    }
}
