using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Bastion.Access;
using Bastion.Generation;
using Bastion.Hosting;
using Bastion.Limits;
using Bastion.Security;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Bastion.Benchmarks;

/// <summary>
/// Admission end to end, as the edge calls it per completion request: <see cref="IUserGrain.SubmitAsync"/> on one real
/// Development silo (through its <see cref="IGrainFactory"/>, no HTTP), which authorizes the API-key credential, has the
/// generation grain tokenize, admits against the user's limits and persists the grant with an ETag-checked write to an
/// embedded PostgreSQL that keeps fsync on, as a deployment does. Every user's limits are raised so nothing is refused.
/// </summary>
/// <remarks>
/// Runs in-process (<see cref="AdmissionConfig"/>): the silo owns a PostgreSQL server, an ONNX model and ports, and is
/// started once for the class rather than in a generated child process per benchmark. Each invocation is measured on
/// its own and followed by an <see cref="IterationCleanupAttribute">iteration cleanup</see> that waits for the
/// admitted generations to finish and settle (a second durable write on the user grain), so that work is neither
/// measured nor left to pile up behind later admissions.
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Config(typeof(AdmissionConfig))]
public class AdmissionBenchmarks
{
    private const int Users = 16;
    // max_tokens = 1 and a short prompt keep the background generation cheap; admission reserves prompt + 1 tokens.
    private static readonly GenerationRequest Request = new(InferenceRegistration.DefaultModelName, "Hello", 1);

    private readonly string[] _pseudonyms = new string[Users];
    private readonly Credential[] _credentials = new Credential[Users];
    private readonly Guid[] _admitted = new Guid[Users];
    private int _admittedCount;
    private BenchmarkSilo? _silo;
    private IGrainFactory? _grains;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        try
        {
            _silo = await BenchmarkSilo.StartAsync("admission");
            _grains = _silo.Services.GetRequiredService<IGrainFactory>();
            await CreateUsersAsync(_silo.Services, _grains);

            // Activate every user and generation path once (model session, JIT, connection pool) before BenchmarkDotNet warms up.
            await SubmitAllAsync();
            await DrainAsync();
        }
        catch
        {
            await CleanupAsync();
            throw;
        }
    }

    private async Task CreateUsersAsync(IServiceProvider services, IGrainFactory grains)
    {
        var pseudonymizer = services.GetRequiredService<Pseudonymizer>();
        var apiKeys = services.GetRequiredService<ApiKeys>();
        var directory = grains.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key);
        var unlimited = new UserLimits(
            new LimitPolicy(LimitAlgorithm.TokenBucket, 1_000_000_000_000, TimeSpan.FromMinutes(1)),
            new LimitPolicy(LimitAlgorithm.TokenBucket, 1_000_000_000_000, TimeSpan.FromMinutes(1)),
            1_000_000,
            1_000_000_000_000_000,
            1_000_000_000_000_000);
        for (var i = 0; i < Users; i++)
        {
            var userId = $"bench-user-{i}";
            var pseudonym = pseudonymizer.Pseudonymize(userId);
            var user = grains.GetGrain<IUserGrain>(pseudonym);
            if (!await directory.AddAsync(pseudonym, userId, isAdmin: false) || !await user.CreateAsync([Roles.User]))
            {
                throw new InvalidOperationException($"Could not create {userId}.");
            }

            var (keyId, apiKey, hash, version) = apiKeys.Generate();
            if (!await user.AddApiKeyAsync(new NewApiKey(keyId, hash, version, "bench", TimeProvider.System.GetUtcNow(), null))
                || !await grains.GetGrain<IApiKeyRouteGrain>(keyId).BindAsync(pseudonym)
                || await user.SetLimitsAsync(unlimited) is null)
            {
                throw new InvalidOperationException($"Could not set up {userId}.");
            }

            // The credential exactly as the edge builds it from a presented key (CallerAuthenticator).
            if (!ApiKeys.TrySplit(apiKey, out var presentedId, out var secret))
            {
                throw new InvalidOperationException("A freshly generated API key did not verify.");
            }

            _pseudonyms[i] = pseudonym;
            _credentials[i] = new Credential(CredentialKind.ApiKey, presentedId, apiKeys.HashPresented(presentedId, secret), 0);
        }
    }

    [Benchmark]
    public Task Submit_Concurrency1() => SubmitAsync(0);

    [Benchmark(OperationsPerInvoke = Users)]
    public Task Submit_Concurrency16() => SubmitAllAsync();

    /// <summary>Waits, unmeasured, for the iteration's generations to run and settle, then lets their activations go.</summary>
    [IterationCleanup]
    public void IterationCleanup() => DrainAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_silo is not null)
        {
            await _silo.DisposeAsync();
            _silo = null;
        }
    }

    private Task SubmitAllAsync()
    {
        var submissions = new Task[Users];
        for (var i = 0; i < Users; i++)
        {
            submissions[i] = SubmitAsync(i);
        }

        return Task.WhenAll(submissions);
    }

    private async Task SubmitAsync(int user)
    {
        var submission = await _grains!.GetGrain<IUserGrain>(_pseudonyms[user]).SubmitAsync(_credentials[user], Request);
        if (submission.GenerationId is not { } generationId)
        {
            throw new InvalidOperationException($"User {user} was refused: {submission.Decision}, {submission.Limit}.");
        }

        _admitted[Interlocked.Increment(ref _admittedCount) - 1] = generationId;
    }

    private async Task DrainAsync()
    {
        var count = _admittedCount;
        var results = new Task[count];
        for (var i = 0; i < count; i++)
        {
            // Returns once the generation has run and settled its usage on the user grain.
            results[i] = _grains!.GetGrain<IGenerationGrain>(_admitted[i]).GetResultAsync();
        }

        await Task.WhenAll(results);
        _admittedCount = 0;
    }

    /// <summary>
    /// In-process (the silo is started once by <see cref="SetupAsync"/>, not rebuilt and relaunched per benchmark), one
    /// invocation per iteration so <see cref="IterationCleanup"/> drains after every measured call, and enough
    /// iterations for the percentiles to mean something. As a mutator it keeps the rest of the job (<c>--job short</c>).
    /// </summary>
    private sealed class AdmissionConfig : ManualConfig
    {
        public AdmissionConfig()
        {
            AddJob(Job.Default
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithInvocationCount(1)
                .WithUnrollFactor(1)
                .WithIterationCount(60)
                .AsMutator());
            AddColumn(StatisticColumn.P50, StatisticColumn.P95, StatisticColumn.OperationsPerSecond);
        }
    }
}
