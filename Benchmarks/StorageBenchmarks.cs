using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Bastion.Hosting;
using Bastion.Security;
using Bastion.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Serialization;
using Orleans.Storage;

namespace Bastion.Benchmarks;

/// <summary>
/// Grain state writes and reads through the <c>bastion</c> storage (<see cref="EncryptedGrainStorage"/>: Orleans binary
/// serialization, AES-GCM envelope under the cached data key, ADO.NET storage of the envelope) against a plaintext
/// baseline: Orleans' own ADO.NET grain storage with its binary serializer (<see cref="OrleansGrainStorageSerializer"/>)
/// on the same embedded PostgreSQL (fsync on), the same runtime role and the same <c>Storage</c> table, in the same silo.
/// </summary>
/// <remarks>
/// Each write goes to a grain id never written before (an insert of a fresh row, as a new grain's first write); each
/// read reads one row written in the setup. The grains are of a type that is not the user grain, so the encrypted path
/// uses the system data key, which the first write creates and every later one finds in the cache: a user grain's first
/// write also creates its user's data key once, which is not what this measures. The DEK benchmarks measure that key
/// lookup itself: <see cref="DataKeyStore.FindAsync"/> from the cache, and from PostgreSQL (unwrap included) by a store
/// with an empty cache, as on a silo that activates the first grain of a scope.
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Config(typeof(StorageConfig))]
public class StorageBenchmarks
{
    private const string PlaintextStorageName = "bench-plaintext";
    private const string StateName = "state";
    private static readonly GrainType GrainType = GrainType.Create("bench.storage");

    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private long _written;
    private BenchmarkSilo? _silo;
    private IGrainStorage? _encrypted;
    private IGrainStorage? _plaintext;
    private BenchmarkState? _state;
    private GrainId _readEncrypted;
    private GrainId _readPlaintext;
    private string? _connectionString;
    private IKeyProvider? _keyProvider;
    private DataKeyStore? _dataKeys;
    private DataKey? _systemKey;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        try
        {
            _silo = await BenchmarkSilo.StartAsync(
                "storage",
                new Dictionary<string, string?>
                {
                    // No model to load: nothing here generates.
                    ["Bastion:Node:Roles:0"] = "api",
                },
                builder => new StorageOnlySiloBuilder(builder.Services, builder.Configuration)
                    // The same ADO.NET storage Bastion seals into, with Orleans' binary serializer in place of the envelope
                    // one. The connection string is known only once the database is open, after this callback has run:
                    // it is read from the BastionDatabase singleton when the options are first resolved.
                    .AddAdoNetGrainStorage(PlaintextStorageName, (OptionsBuilder<AdoNetGrainStorageOptions> options) =>
                        options.Configure<BastionDatabase, Serializer>((storage, database, serializer) =>
                        {
                            storage.Invariant = "Npgsql";
                            storage.ConnectionString = database.RuntimeConnectionString;
                            storage.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer);
                        })));
            var services = _silo.Services;
            _encrypted = services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Bastion);
            _plaintext = services.GetRequiredKeyedService<IGrainStorage>(PlaintextStorageName);
            _state = BenchmarkState.Create();

            // The state type must have its generated codec, or both paths would measure a fallback (or fail).
            var serializer = services.GetRequiredService<Serializer>();
            var size = serializer.SerializeToArray(_state).Length;
            Console.WriteLine($"// Serialized state: {size} bytes");

            _readEncrypted = NextGrainId();
            _readPlaintext = NextGrainId();
            await WriteAsync(_encrypted, _readEncrypted);
            await WriteAsync(_plaintext, _readPlaintext);
            if ((await ReadAsync(_encrypted, _readEncrypted)).Payload.Length != _state.Payload.Length
                || (await ReadAsync(_plaintext, _readPlaintext)).Payload.Length != _state.Payload.Length)
            {
                throw new InvalidOperationException("A written state did not read back.");
            }

            _connectionString = services.GetRequiredService<BastionDatabase>().KeyStoreConnectionString;
            _keyProvider = services.GetRequiredService<IKeyProvider>();
            _dataKeys = services.GetRequiredService<DataKeyStore>();
            _systemKey = await _dataKeys.GetCurrentAsync(DataKeyScope.System, CancellationToken.None);
        }
        catch
        {
            await CleanupAsync();
            throw;
        }
    }

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Write")]
    public Task Write_Plaintext() => WriteAsync(_plaintext!, NextGrainId());

    [Benchmark]
    [BenchmarkCategory("Write")]
    public Task Write_Encrypted() => WriteAsync(_encrypted!, NextGrainId());

    /// <summary>What an audited admin change costs: the encrypted state write, then its durable audit record.</summary>
    public async Task Write_EncryptedAndAudited()
    {
        await WriteAsync(_encrypted!, NextGrainId());
        await _silo!.Services.GetRequiredService<Bastion.Audit.IAuditTrail>().RecordAsync(new Bastion.Audit.AuditRecord(
            DateTimeOffset.UtcNow, "user.suspend", "benchmark-admin", "benchmark-user", "204"));
    }

    /// <summary>The silo under test (for the audit comparison).</summary>
    public IServiceProvider Services => _silo!.Services;

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Read")]
    public Task<BenchmarkState> Read_Plaintext() => ReadAsync(_plaintext!, _readPlaintext);

    [Benchmark]
    [BenchmarkCategory("Read")]
    public Task<BenchmarkState> Read_Encrypted() => ReadAsync(_encrypted!, _readEncrypted);

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("DekFind")]
    public Task<DataKey> DekFind_WarmCache() => _dataKeys!.FindAsync(DataKeyScope.System, _systemKey!.Id, CancellationToken.None);

    [Benchmark]
    [BenchmarkCategory("DekFind")]
    public async Task<DataKey> DekFind_ColdCache()
    {
        using var store = new DataKeyStore(_connectionString!, _keyProvider!);
        return await store.FindAsync(DataKeyScope.System, _systemKey!.Id, CancellationToken.None);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_silo is not null)
        {
            await _silo.DisposeAsync();
            _silo = null;
        }
    }

    private GrainId NextGrainId() =>
        GrainId.Create(GrainType, $"{_run}-{Interlocked.Increment(ref _written)}");

    private Task WriteAsync(IGrainStorage storage, GrainId grainId) =>
        storage.WriteStateAsync(StateName, grainId, new GrainState<BenchmarkState>(_state!));

    private static async Task<BenchmarkState> ReadAsync(IGrainStorage storage, GrainId grainId)
    {
        var state = new GrainState<BenchmarkState>(new BenchmarkState());
        await storage.ReadStateAsync(StateName, grainId, state);
        return state.RecordExists && state.State is { } read ? read : throw new InvalidOperationException($"No stored state for {grainId}.");
    }

    /// <summary>
    /// Lets a provider's <see cref="ISiloBuilder"/> extension register its services before Bastion's own
    /// <c>UseOrleans</c>. Calling <c>UseOrleans</c> here instead would register Orleans' hosted service ahead of the
    /// embedded database's, so the host would stop PostgreSQL before the silo (hosted services stop in reverse order).
    /// </summary>
    private sealed class StorageOnlySiloBuilder(IServiceCollection services, Microsoft.Extensions.Configuration.IConfiguration configuration) : ISiloBuilder
    {
        public IServiceCollection Services { get; } = services;

        public Microsoft.Extensions.Configuration.IConfiguration Configuration { get; } = configuration;
    }

    /// <summary>
    /// In-process (the silo and its PostgreSQL are started once by <see cref="SetupAsync"/>), with enough iterations
    /// for the percentiles to mean something and the ratio of each encrypted path to its plaintext baseline. As a
    /// mutator it keeps the rest of the job (<c>--job short</c>).
    /// </summary>
    private sealed class StorageConfig : ManualConfig
    {
        public StorageConfig()
        {
            AddJob(Job.Default
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithIterationCount(15)
                .AsMutator());
            AddColumn(StatisticColumn.P50, StatisticColumn.P95, StatisticColumn.OperationsPerSecond);
            AddLogicalGroupRules(BenchmarkLogicalGroupRule.ByCategory);
            WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
        }
    }
}

/// <summary>A grain state of about 1 KB in Orleans' binary format: a few scalars, a list and an opaque payload.</summary>
[GenerateSerializer]
public sealed class BenchmarkState
{
    [Id(0)] public string Name { get; set; } = "";
    [Id(1)] public long Counter { get; set; }
    [Id(2)] public DateTimeOffset UpdatedAt { get; set; }
    [Id(3)] public List<string> Labels { get; set; } = [];
    [Id(4)] public byte[] Payload { get; set; } = [];

    public static BenchmarkState Create() => new()
    {
        Name = "benchmark state",
        Counter = 42,
        UpdatedAt = DateTimeOffset.UnixEpoch,
        Labels = [.. Enumerable.Range(0, 8).Select(i => $"label-{i:D2}")],
        Payload = RandomNumberGenerator.GetBytes(800),
    };
}
