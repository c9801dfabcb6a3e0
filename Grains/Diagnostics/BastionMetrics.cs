using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Bastion.Diagnostics;

/// <summary>
/// Every instrument Bastion publishes, on one <see cref="Meter"/> named <c>Bastion</c> (docs/metrics.md): its own
/// <c>bastion_*</c> series and the OpenTelemetry generative-AI ones (<c>gen_ai.*</c>). Labels carry routes, statuses,
/// model names, operation names and limit names only: never a user, a key or prompt text.
/// </summary>
public sealed class BastionMetrics
{
    public const string MeterName = "Bastion";

    /// <summary>The <c>gen_ai.operation.name</c> of <c>/v1/completions</c>.</summary>
    public const string TextCompletionOperation = "text_completion";

    /// <summary>The <c>gen_ai.operation.name</c> of <c>/v1/chat/completions</c>.</summary>
    public const string ChatOperation = "chat";

    /// <summary>Bucket bounds in seconds: token latencies of small models are sub-millisecond, of large ones tenths.</summary>
    private static readonly IReadOnlyList<double> LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    // Bucket bounds the OpenTelemetry generative-AI semantic conventions advise for each instrument.
    private static readonly IReadOnlyList<long> TokenUsageBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
    private static readonly IReadOnlyList<double> RequestDurationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    private static readonly IReadOnlyList<double> FirstTokenBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
    private static readonly IReadOnlyList<double> OutputTokenBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];

    private readonly Counter<long> _requests;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _completionTokens;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interTokenLatency;
    private readonly Counter<long> _rateLimitRefusals;
    private readonly Counter<long> _anomalyActions;
    private readonly Counter<long> _guardHits;
    private readonly Histogram<long> _tokenUsage;
    private readonly Histogram<double> _requestDuration;
    private readonly Histogram<double> _serverTimeToFirstToken;
    private readonly Histogram<double> _timePerOutputToken;
    private Func<TimeSpan?> _keyProviderAge = () => null;
    private IReadOnlyList<KeyValuePair<string, string>> _models = [];
    private Func<IEnumerable<ModelLoad>> _load = () => [];

    public BastionMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(MeterName);
        _requests = Meter.CreateCounter<long>("bastion_http_requests", description: "HTTP requests answered, by route template, method and status code.");
        _promptTokens = Meter.CreateCounter<long>("bastion_prompt_tokens", description: "Prompt tokens fed to a model.");
        _completionTokens = Meter.CreateCounter<long>("bastion_completion_tokens", description: "Tokens a model generated.");
        _timeToFirstToken = Meter.CreateHistogram(
            "bastion_time_to_first_token_seconds", "s", "From the moment a sequence joins its model's queue (queueing and prefill included) to its first generated token.",
            tags: null, Advice(LatencyBuckets));
        _interTokenLatency = Meter.CreateHistogram(
            "bastion_inter_token_latency_seconds", "s", "Between two consecutive generated tokens of one sequence.", tags: null, Advice(LatencyBuckets));
        _rateLimitRefusals = Meter.CreateCounter<long>("bastion_rate_limit_refusals", description: "Requests refused by a rate limit or quota, by limit.");
        _anomalyActions = Meter.CreateCounter<long>("bastion_anomaly_actions", description: "Actions taken on users' anomalies (docs/anomaly-detection.md), by signal and action.");
        _guardHits = Meter.CreateCounter<long>("bastion_guard_hits", description: "Requests and completions a guard matched (docs/guards.md), by guard, rule and action.");
        Meter.CreateObservableGauge("bastion_model_info", ObserveModels, description: "1 for each model this silo serves, labelled with its execution provider.");
        Meter.CreateObservableGauge(
            "bastion_batching_queue_depth", () => _load().Select(l => Measurement(l.QueueDepth, l.Model)), description: "Generations waiting for a batch slot (or about to start), by model.");
        Meter.CreateObservableGauge(
            "bastion_batching_active_sequences", () => _load().Select(l => Measurement(l.ActiveSequences, l.Model)), description: "Sequences holding a batch slot, by model.");
        Meter.CreateObservableGauge(
            "bastion_key_provider_age_seconds", ObserveKeyProviderAge, "s", "Seconds since the key provider last read its keys successfully (Key Vault only).");

        // OpenTelemetry semantic conventions for generative AI (gen-ai-metrics): what any gen_ai dashboard reads.
        _tokenUsage = Meter.CreateHistogram(
            "gen_ai.client.token.usage", "{token}", "Number of input and output tokens used, per generation.", tags: null, Advice(TokenUsageBuckets));
        _requestDuration = Meter.CreateHistogram(
            "gen_ai.server.request.duration", "s", "Generative AI server request duration: from joining the model's queue to the last token.",
            tags: null, Advice(RequestDurationBuckets));
        _serverTimeToFirstToken = Meter.CreateHistogram(
            "gen_ai.server.time_to_first_token", "s", "Time to generate the first token for successful responses.", tags: null, Advice(FirstTokenBuckets));
        _timePerOutputToken = Meter.CreateHistogram(
            "gen_ai.server.time_per_output_token", "s", "Time per output token generated after the first token for successful responses.",
            tags: null, Advice(OutputTokenBuckets));
    }

    /// <summary>This silo's meter (each silo of a test process has its own, from its own meter factory).</summary>
    public Meter Meter { get; }

    /// <summary>Counts one answered HTTP request.</summary>
    /// <param name="route">The route template (never the raw path, which can name a user), or <c>unmatched</c>.</param>
    /// <param name="method">The HTTP method, or <c>OTHER</c>.</param>
    /// <param name="status">The status code sent.</param>
    public void RecordRequest(string route, string method, int status) =>
        _requests.Add(1, new("route", route), new("method", method), new("status", status));

    public void RecordTokens(string model, long promptTokens, long completionTokens) => RecordTokens(model, TextCompletionOperation, promptTokens, completionTokens);

    /// <summary>Counts one generation's tokens, as <c>bastion_*_tokens</c> and as <c>gen_ai.client.token.usage</c>.</summary>
    /// <param name="model">The model's name.</param>
    /// <param name="operation"><see cref="TextCompletionOperation"/> or <see cref="ChatOperation"/>.</param>
    /// <param name="promptTokens">Tokens fed.</param>
    /// <param name="completionTokens">Tokens generated.</param>
    public void RecordTokens(string model, string operation, long promptTokens, long completionTokens)
    {
        _promptTokens.Add(promptTokens, new KeyValuePair<string, object?>("model", model));
        _completionTokens.Add(completionTokens, new KeyValuePair<string, object?>("model", model));
        _tokenUsage.Record(promptTokens, GenAi(model, operation, new("gen_ai.token.type", "input")));
        _tokenUsage.Record(completionTokens, GenAi(model, operation, new("gen_ai.token.type", "output")));
    }

    public void RecordTimeToFirstToken(string model, TimeSpan elapsed) => RecordTimeToFirstToken(model, TextCompletionOperation, elapsed);

    /// <summary>Records the time from joining the queue to the first token, as <c>bastion_*</c> and <c>gen_ai.*</c>.</summary>
    public void RecordTimeToFirstToken(string model, string operation, TimeSpan elapsed)
    {
        _timeToFirstToken.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("model", model));
        _serverTimeToFirstToken.Record(elapsed.TotalSeconds, GenAi(model, operation));
    }

    /// <summary>Records one finished generation: its whole duration and, when it produced two tokens or more, its time per output token.</summary>
    /// <param name="model">The model's name.</param>
    /// <param name="operation"><see cref="TextCompletionOperation"/> or <see cref="ChatOperation"/>.</param>
    /// <param name="duration">From joining the queue to the end.</param>
    /// <param name="afterFirstToken">From the first token to the end; null when there was none.</param>
    /// <param name="completionTokens">Tokens generated.</param>
    /// <param name="errorType">The <c>error.type</c> of a failed generation; null when it succeeded.</param>
    public void RecordGeneration(string model, string operation, TimeSpan duration, TimeSpan? afterFirstToken, long completionTokens, string? errorType = null)
    {
        _requestDuration.Record(
            duration.TotalSeconds, errorType is null ? GenAi(model, operation) : GenAi(model, operation, new("error.type", errorType)));
        if (errorType is null && afterFirstToken is { } decoding && completionTokens > 1)
        {
            _timePerOutputToken.Record(decoding.TotalSeconds / (completionTokens - 1), GenAi(model, operation));
        }
    }

    public void RecordInterTokenLatency(string model, TimeSpan elapsed) =>
        _interTokenLatency.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("model", model));

    /// <summary>Counts one request refused by a limit.</summary>
    /// <param name="limit">The limit's name: <c>requests</c>, <c>tokens</c>, <c>concurrency</c>, <c>daily-tokens</c>, <c>monthly-tokens</c>, <c>token-exchange</c>.</param>
    public void RecordRateLimitRefusal(string limit) =>
        _rateLimitRefusals.Add(1, new KeyValuePair<string, object?>("limit", limit));

    /// <summary>Counts one action taken because a user's anomaly signal fired.</summary>
    /// <param name="signal">The signal's name: <c>auth-failures</c>, <c>refusal-storm</c>, <c>near-identical-prompts</c>, <c>prompt-enumeration</c>, <c>token-volume-spike</c>, <c>new-client-network</c>.</param>
    /// <param name="action">The action: <c>observe</c>, <c>throttle</c> or <c>suspend</c>.</param>
    public void RecordAnomalyAction(string signal, string action) =>
        _anomalyActions.Add(1, new KeyValuePair<string, object?>("signal", signal), new KeyValuePair<string, object?>("action", action));

    /// <summary>Counts one guard hit: a prompt or completion that matched a rule.</summary>
    /// <param name="guard"><c>input</c> or <c>output</c>.</param>
    /// <param name="rule">The rule that matched: a detector's name (<c>prompt-cap</c>, <c>injection</c>, <c>email</c>, <c>payment-card</c>, …).</param>
    /// <param name="action">What was done: <c>flag</c>, <c>block</c> or <c>redact</c>.</param>
    public void RecordGuardHit(string guard, string rule, string action) => _guardHits.Add(
        1, new KeyValuePair<string, object?>("guard", guard), new KeyValuePair<string, object?>("rule", rule), new KeyValuePair<string, object?>("action", action));

    /// <summary>Publishes the models this silo serves and where each runs.</summary>
    public void SetModels(IEnumerable<KeyValuePair<string, string>> modelProviders) => _models = [.. modelProviders];

    /// <summary>Publishes where the batching engines' queue depths and active sequences are read from.</summary>
    public void SetBatchingLoad(Func<IEnumerable<ModelLoad>> load) => _load = load;

    /// <summary>Publishes how the key provider's age is read: the time since its last successful refresh, null when it has none.</summary>
    public void SetKeyProviderAge(Func<TimeSpan?> age) => _keyProviderAge = age;

    private static InstrumentAdvice<T> Advice<T>(IReadOnlyList<T> buckets)
        where T : struct => new() { HistogramBucketBoundaries = buckets };

    private static TagList GenAi(string model, string operation) =>
        new([new("gen_ai.operation.name", operation), new("gen_ai.request.model", model), new("gen_ai.provider.name", "bastion")]);

    private static TagList GenAi(string model, string operation, KeyValuePair<string, object?> extra)
    {
        var tags = GenAi(model, operation);
        tags.Add(extra);
        return tags;
    }

    private IEnumerable<Measurement<double>> ObserveKeyProviderAge() =>
        _keyProviderAge() is { } age ? [new Measurement<double>(Math.Max(0, age.TotalSeconds))] : [];

    private static Measurement<int> Measurement(int value, string model) => new(value, new KeyValuePair<string, object?>("model", model));

    private IEnumerable<Measurement<int>> ObserveModels() =>
        _models.Select(m => new Measurement<int>(1, new KeyValuePair<string, object?>("model", m.Key), new KeyValuePair<string, object?>("provider", m.Value)));
}

/// <summary>One model's batching load on this silo.</summary>
public readonly record struct ModelLoad(string Model, int QueueDepth, int ActiveSequences);
