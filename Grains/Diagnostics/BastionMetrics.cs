using System.Diagnostics.Metrics;

namespace Bastion.Diagnostics;

/// <summary>
/// Every instrument Bastion publishes, on one <see cref="Meter"/> named <c>Bastion</c> (docs/metrics.md). Labels
/// carry routes, statuses, model names and limit names only: never a user, a key or prompt text.
/// </summary>
public sealed class BastionMetrics
{
    public const string MeterName = "Bastion";

    private readonly Counter<long> _requests;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _completionTokens;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interTokenLatency;
    private readonly Counter<long> _rateLimitRefusals;
    private readonly Counter<long> _anomalyActions;
    private IReadOnlyList<KeyValuePair<string, string>> _models = [];
    private Func<IEnumerable<ModelLoad>> _load = () => [];

    public BastionMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(MeterName);
        _requests = Meter.CreateCounter<long>("bastion_http_requests", description: "HTTP requests answered, by route template, method and status code.");
        _promptTokens = Meter.CreateCounter<long>("bastion_prompt_tokens", description: "Prompt tokens fed to a model.");
        _completionTokens = Meter.CreateCounter<long>("bastion_completion_tokens", description: "Tokens a model generated.");
        _timeToFirstToken = Meter.CreateHistogram<double>("bastion_time_to_first_token_seconds", "s", "From the moment a sequence joins its model's queue (queueing and prefill included) to its first generated token.");
        _interTokenLatency = Meter.CreateHistogram<double>("bastion_inter_token_latency_seconds", "s", "Between two consecutive generated tokens of one sequence.");
        _rateLimitRefusals = Meter.CreateCounter<long>("bastion_rate_limit_refusals", description: "Requests refused by a rate limit or quota, by limit.");
        _anomalyActions = Meter.CreateCounter<long>("bastion_anomaly_actions", description: "Actions taken on users' anomalies (docs/anomaly-detection.md), by signal and action.");
        Meter.CreateObservableGauge("bastion_model_info", ObserveModels, description: "1 for each model this silo serves, labelled with its execution provider.");
        Meter.CreateObservableGauge(
            "bastion_batching_queue_depth", () => _load().Select(l => Measurement(l.QueueDepth, l.Model)), description: "Generations waiting for a batch slot (or about to start), by model.");
        Meter.CreateObservableGauge(
            "bastion_batching_active_sequences", () => _load().Select(l => Measurement(l.ActiveSequences, l.Model)), description: "Sequences holding a batch slot, by model.");
    }

    /// <summary>This silo's meter (each silo of a test process has its own, from its own meter factory).</summary>
    public Meter Meter { get; }

    /// <summary>Counts one answered HTTP request.</summary>
    /// <param name="route">The route template (never the raw path, which can name a user), or <c>unmatched</c>.</param>
    /// <param name="method">The HTTP method, or <c>OTHER</c>.</param>
    /// <param name="status">The status code sent.</param>
    public void RecordRequest(string route, string method, int status) =>
        _requests.Add(1, new("route", route), new("method", method), new("status", status));

    public void RecordTokens(string model, long promptTokens, long completionTokens)
    {
        _promptTokens.Add(promptTokens, new KeyValuePair<string, object?>("model", model));
        _completionTokens.Add(completionTokens, new KeyValuePair<string, object?>("model", model));
    }

    public void RecordTimeToFirstToken(string model, TimeSpan elapsed) =>
        _timeToFirstToken.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("model", model));

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

    /// <summary>Publishes the models this silo serves and where each runs.</summary>
    public void SetModels(IEnumerable<KeyValuePair<string, string>> modelProviders) => _models = [.. modelProviders];

    /// <summary>Publishes where the batching engines' queue depths and active sequences are read from.</summary>
    public void SetBatchingLoad(Func<IEnumerable<ModelLoad>> load) => _load = load;

    private static Measurement<int> Measurement(int value, string model) => new(value, new KeyValuePair<string, object?>("model", model));

    private IEnumerable<Measurement<int>> ObserveModels() =>
        _models.Select(m => new Measurement<int>(1, new KeyValuePair<string, object?>("model", m.Key), new KeyValuePair<string, object?>("provider", m.Value)));
}

/// <summary>One model's batching load on this silo.</summary>
public readonly record struct ModelLoad(string Model, int QueueDepth, int ActiveSequences);
