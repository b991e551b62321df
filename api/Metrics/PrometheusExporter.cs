using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using DataBuild.Runtime.Telemetry;

namespace DataBuild.Api.Metrics;

/// <summary>
/// Collects the process's System.Diagnostics.Metrics instruments (DataBuild's, the runtime's and ASP.NET Core's)
/// and renders them in the Prometheus text format (version 0.0.4). Counters are summed since the silo started,
/// gauges keep their last value, histograms keep fixed buckets.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    // Process-wide meters, and the host's own ASP.NET Core meters (created through its IMeterFactory: another host in
    // the same process, such as a second in-process silo in a test, has its own).
    private static readonly string[] ProcessMeters = [DataBuildMetrics.MeterName, "System.Runtime"];
    private static readonly string[] HostMeters = ["Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"];
    private static readonly double[] SecondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
    private static readonly double[] CountBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Family> _families = new();
    private readonly Lock _collecting = new();

    public PrometheusExporter(IMeterFactory hostMeters)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            var meter = instrument.Meter;
            if (!ProcessMeters.Contains(meter.Name) && !(HostMeters.Contains(meter.Name) && ReferenceEquals(meter.Scope, hostMeters))) return;
            _families[instrument] = new Family(instrument);
            listener.EnableMeasurementEvents(instrument);
        };
        _listener.MeasurementsCompleted = (instrument, _) => _families.TryRemove(instrument, out Family? _); // its meter was disposed
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<float>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<short>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<byte>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<decimal>((i, v, tags, _) => Record(i, (double)v, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_families.TryGetValue(instrument, out var family)) family.Record(value, Labels(tags));
    }

    /// <summary>The current values, in the Prometheus text format.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        lock (_collecting)
        {
            _listener.RecordObservableInstruments(); // gauges and observable counters report now
            // One family per name: Prometheus rejects a name declared twice.
            foreach (var family in _families.Values.DistinctBy(f => f.Name).OrderBy(f => f.Name, StringComparer.Ordinal)) family.Render(text);
        }
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    [ThreadStatic] private static StringBuilder? _labels;
    private static readonly ConcurrentDictionary<string, string> LabelNames = new(StringComparer.Ordinal);

    /// <summary>The series' labels, sorted by name: one string per measurement (this runs on every turn and request).</summary>
    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return "";
        Span<int> order = stackalloc int[tags.Length];
        for (var i = 0; i < order.Length; i++) order[i] = i;
        for (var i = 1; i < order.Length; i++) // insertion sort: a handful of tags, usually already in order
            for (var j = i; j > 0 && string.CompareOrdinal(tags[order[j - 1]].Key, tags[order[j]].Key) > 0; j--)
                (order[j - 1], order[j]) = (order[j], order[j - 1]);
        var text = _labels ??= new StringBuilder();
        text.Clear();
        foreach (var i in order)
        {
            if (text.Length > 0) text.Append(',');
            text.Append(LabelNames.GetOrAdd(tags[i].Key, static key => Name(key, colons: false))).Append("=\"");
            var value = tags[i].Value switch
            {
                string v => v,
                null => "",
                var v => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
            };
            foreach (var c in value)
            {
                if (c is '\\' or '"') text.Append('\\').Append(c);
                else if (c == '\n') text.Append("\\n");
                else text.Append(c);
            }
            text.Append('"');
        }
        return text.ToString();
    }

    /// <summary>A name Prometheus accepts: metrics [a-zA-Z_:][a-zA-Z0-9_:]*, labels the same without colons.</summary>
    private static string Name(string name, bool colons = true)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c == '_' || (colons && c == ':') ? c : '_').ToArray();
        return chars.Length > 0 && char.IsAsciiDigit(chars[0]) ? "_" + new string(chars) : new string(chars);
    }

    private static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : double.IsNaN(value) ? "NaN"
            : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>One instrument: its series by label set.</summary>
    private sealed class Family
    {
        private readonly ConcurrentDictionary<string, Series> _series = new();
        private readonly Kind _kind;
        private readonly double[] _buckets = [];
        private readonly string? _help;

        public Family(Instrument instrument)
        {
            _help = instrument.Description;
            var type = instrument.GetType();
            var generic = type.IsGenericType ? type.GetGenericTypeDefinition() : type;
            _kind = generic == typeof(Counter<>) || generic == typeof(ObservableCounter<>) ? Kind.Counter
                : generic == typeof(Histogram<>) ? Kind.Histogram
                : Kind.Gauge; // up-down counters and gauges: a value that goes both ways
            Cumulative = generic == typeof(ObservableCounter<>) || generic == typeof(ObservableUpDownCounter<>) || generic == typeof(ObservableGauge<>)
                         || generic.Name.StartsWith("Gauge", StringComparison.Ordinal);
            var unit = instrument.Unit switch
            {
                "s" => "_seconds",
                "By" => "_bytes",
                "ms" => "_milliseconds",
                _ => "",
            };
            var baseName = Name(instrument.Name);
            if (unit.Length > 0 && !baseName.EndsWith(unit, StringComparison.Ordinal)) baseName += unit;
            Name = _kind == Kind.Counter && !baseName.EndsWith("_total", StringComparison.Ordinal) ? baseName + "_total" : baseName;
            if (_kind == Kind.Histogram) _buckets = instrument.Unit == "s" ? SecondsBuckets : CountBuckets;
        }

        public string Name { get; }

        /// <summary>The instrument reports its current value (observable instruments, gauges) rather than increments.</summary>
        private bool Cumulative { get; }

        public void Record(double value, string labels)
        {
            var series = _series.GetOrAdd(labels, static (_, buckets) => new Series(buckets), _buckets.Length);
            lock (series)
            {
                if (_kind == Kind.Histogram)
                {
                    var at = 0;
                    while (at < _buckets.Length && value > _buckets[at]) at++;
                    series.Buckets[at]++;
                    series.Count++;
                    series.Value += value;
                }
                else if (Cumulative) series.Value = value;
                else series.Value += value;
            }
        }

        public void Render(StringBuilder text)
        {
            if (_series.IsEmpty) return;
            if (!string.IsNullOrEmpty(_help)) text.Append("# HELP ").Append(Name).Append(' ').Append(_help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
            text.Append("# TYPE ").Append(Name).Append(' ').Append(_kind.ToString().ToLowerInvariant()).Append('\n');
            foreach (var (labels, series) in _series.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                lock (series)
                {
                    if (_kind != Kind.Histogram)
                    {
                        Line(text, Name, labels, series.Value);
                        continue;
                    }
                    long cumulative = 0;
                    for (var i = 0; i <= _buckets.Length; i++)
                    {
                        cumulative += series.Buckets[i];
                        var le = $"le=\"{(i < _buckets.Length ? Number(_buckets[i]) : "+Inf")}\"";
                        Line(text, Name + "_bucket", labels.Length == 0 ? le : labels + "," + le, cumulative);
                    }
                    Line(text, Name + "_sum", labels, series.Value);
                    Line(text, Name + "_count", labels, series.Count);
                }
            }
        }

        private static void Line(StringBuilder text, string name, string labels, double value)
        {
            text.Append(name);
            if (labels.Length > 0) text.Append('{').Append(labels).Append('}');
            text.Append(' ').Append(Number(value)).Append('\n');
        }
    }

    private enum Kind { Counter, Gauge, Histogram }

    private sealed class Series(int buckets)
    {
        public double Value;
        public long Count;
        public readonly long[] Buckets = new long[buckets + 1];
    }
}
