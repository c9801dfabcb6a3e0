using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Bastion.Diagnostics;

/// <summary>
/// Renders this silo's <see cref="BastionMetrics"/> in the Prometheus text format (version 0.0.4). Written here
/// because the OpenTelemetry Prometheus exporter is available only as a prerelease: a <see cref="MeterListener"/>
/// keeps cumulative sums per series, which is all the format needs. Counters become <c>*_total</c>, histograms
/// <c>*_bucket</c>/<c>*_sum</c>/<c>*_count</c> with fixed latency buckets, gauges are read at scrape time.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>Bucket bounds in seconds: token latencies of small models are sub-millisecond, of large ones tenths.</summary>
    private static readonly double[] Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Lock _lock = new();
    private readonly MeterListener _listener = new();
    private readonly SortedDictionary<string, InstrumentSeries> _instruments = new(StringComparer.Ordinal);

    public PrometheusExporter(BastionMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // Only this silo's meter: other silos of the same process have their own.
            if (ReferenceEquals(instrument.Meter, metrics.Meter))
            {
                var series = new InstrumentSeries(instrument);
                lock (_lock)
                {
                    _instruments[instrument.Name] = series;
                }

                listener.EnableMeasurementEvents(instrument, series);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => Record(state, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, state) => Record(state, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, state) => Record(state, value, tags));
        _listener.Start();
    }

    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>The current value of every series, in the text format.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        lock (_lock)
        {
            foreach (var series in _instruments.Values.Where(s => s.Kind == SeriesKind.Gauge))
            {
                series.Values.Clear();
            }

            _listener.RecordObservableInstruments();
            foreach (var series in _instruments.Values)
            {
                series.Write(text);
            }
        }

        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private void Record(object? state, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (state is not InstrumentSeries series)
        {
            return;
        }

        var labels = Labels(tags);
        lock (_lock)
        {
            series.Add(labels, value);
        }
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var pairs = new List<KeyValuePair<string, string>>(tags.Length);
        foreach (var tag in tags)
        {
            pairs.Add(new(tag.Key, Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? string.Empty));
        }

        pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return string.Join(",", pairs.Select(p => $"{Name(p.Key)}=\"{Escape(p.Value)}\""));
    }

    private static string Name(string name)
    {
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(chars[i]) || chars[i] == '_'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal)
        .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Number(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private enum SeriesKind
    {
        Counter,
        Histogram,
        Gauge,
    }

    private sealed class InstrumentSeries(Instrument instrument)
    {
        public SeriesKind Kind { get; } = instrument switch
        {
            Counter<long> or Counter<int> or Counter<double> => SeriesKind.Counter,
            Histogram<double> => SeriesKind.Histogram,
            _ => SeriesKind.Gauge,
        };

        public SortedDictionary<string, double> Values { get; } = new(StringComparer.Ordinal);

        private SortedDictionary<string, (long[] Buckets, double Sum, long Count)> Histograms { get; } = new(StringComparer.Ordinal);

        public void Add(string labels, double value)
        {
            switch (Kind)
            {
                case SeriesKind.Counter:
                    Values[labels] = Values.GetValueOrDefault(labels) + value;
                    break;
                case SeriesKind.Gauge:
                    Values[labels] = value;
                    break;
                default:
                    var (buckets, sum, count) = Histograms.TryGetValue(labels, out var existing) ? existing : (new long[Buckets.Length], 0d, 0L);
                    var index = Array.FindIndex(Buckets, bound => value <= bound);
                    if (index >= 0)
                    {
                        buckets[index]++;
                    }

                    Histograms[labels] = (buckets, sum + value, count + 1);
                    break;
            }
        }

        public void Write(StringBuilder text)
        {
            var name = Name(instrument.Name);
            var exposed = Kind == SeriesKind.Counter ? name + "_total" : name;
            if (instrument.Description is { } description)
            {
                text.Append("# HELP ").Append(exposed).Append(' ').Append(description.Replace("\n", " ", StringComparison.Ordinal)).Append('\n');
            }

            text.Append("# TYPE ").Append(exposed).Append(' ').Append(Kind switch
            {
                SeriesKind.Counter => "counter",
                SeriesKind.Histogram => "histogram",
                _ => "gauge",
            }).Append('\n');
            foreach (var (labels, value) in Values)
            {
                text.Append(exposed).Append(Braces(labels)).Append(' ').Append(Number(value)).Append('\n');
            }

            foreach (var (labels, (buckets, sum, count)) in Histograms)
            {
                var cumulative = 0L;
                var prefix = labels.Length == 0 ? string.Empty : labels + ",";
                for (var i = 0; i < Buckets.Length; i++)
                {
                    cumulative += buckets[i];
                    text.Append(name).Append("_bucket{").Append(prefix).Append("le=\"").Append(Number(Buckets[i])).Append("\"} ").Append(cumulative).Append('\n');
                }

                text.Append(name).Append("_bucket{").Append(prefix).Append("le=\"+Inf\"} ").Append(count).Append('\n');
                text.Append(name).Append("_sum").Append(Braces(labels)).Append(' ').Append(Number(sum)).Append('\n');
                text.Append(name).Append("_count").Append(Braces(labels)).Append(' ').Append(count).Append('\n');
            }
        }

        private static string Braces(string labels) => labels.Length == 0 ? string.Empty : "{" + labels + "}";
    }
}
