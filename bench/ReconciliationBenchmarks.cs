using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using DataBuild.Silo;
using DataBuild.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Bench;

/// <summary>
/// Dispatch latency (a partition becomes available → the dependent job's process has started) and a deep
/// chain discovered only through missing dependencies, on a real silo over HTTP with PostgreSQL (fsync on).
/// </summary>
internal static class ReconciliationBenchmarks
{
    /// <summary>
    /// Measures <paramref name="repeat"/> times, each on a fresh database and silo, and reports each figure's median:
    /// on this machine one run's p50 moves by a quarter between runs of the same code.
    /// </summary>
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(PostgresServer server, int samples, int hops, int repeat)
    {
        var runs = new List<Measurement>();
        for (var i = 0; i < repeat; i++)
        {
            var m = await MeasureOnFreshSiloAsync(server, samples, hops);
            runs.Add(m);
            Console.WriteLine($"  reconciliation run {i + 1} of {repeat}: dispatch p50 {m.P50:0.00} ms, p99 {m.P99:0.00} ms; chain {m.PerHop:0.00} ms/hop");
        }
        var (p50, p99, perHop) = Measurement.Medians(runs);
        return
        [
            new("dispatch_latency_p50", Math.Round(p50, 2), "ms", null, null, null, "<= 5 ms", p50 <= 5),
            new("dispatch_latency_p99", Math.Round(p99, 2), "ms", null, null, null, "<= 20 ms", p99 <= 20),
            new($"deep_chain_{hops}_hops_per_hop", Math.Round(perHop, 2), "ms/hop", null, null, null, "<= 10 ms", perHop <= 10),
        ];
    }

    private static async Task<Measurement> MeasureOnFreshSiloAsync(PostgresServer server, int samples, int hops)
    {
        var folder = Directory.CreateTempSubdirectory("databuild-bench-").FullName;
        var (graph, data) = WriteGraph(folder);
        var database = await server.CreateDatabaseAsync("recon");
        await QuietServer.CheckpointAsync(server);
        var url = $"http://127.0.0.1:{PostgresServer.FreePort()}";
        var app = SiloApplication.Build(["--store", $"postgres:{database}", "--urls", url, "--graph", graph, "--Logging:LogLevel:Default=Warning"]);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        try
        {
            return await MeasureAsync(http, data, samples, hops, "", database);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    public sealed record Measurement(double P50, double P99, double PerHop)
    {
        /// <summary>Each figure's median over <paramref name="runs"/>.</summary>
        public static Measurement Medians(IReadOnlyCollection<Measurement> runs) =>
            new(Statistics.Median(runs.Select(r => r.P50)), Statistics.Median(runs.Select(r => r.P99)), Statistics.Median(runs.Select(r => r.PerHop)));
    }

    /// <summary>The benchmark graph (dep: waits on ext/n; hop: a chain through missing deps) in <paramref name="folder"/>: (graph file, data folder).</summary>
    public static (string Graph, string Data) WriteGraph(string folder)
    {
        var data = Path.Combine(folder, "data");
        Directory.CreateDirectory(data);
        var entrypoint = BenchJob.WriteInto(folder);
        var graph = Path.Combine(folder, "databuild.json");
        File.WriteAllText(graph, $$"""
            { "graph_label": "bench",
              "jobs": [ { "label": "dep", "entrypoint": "{{entrypoint}}", "partition_patterns": ["d/.*"], "max_concurrency": 8, "environment": { "DATA": "{{data}}", "LC_ALL": "C" } },
                        { "label": "hop", "entrypoint": "{{entrypoint}}", "partition_patterns": ["h/.*"], "max_concurrency": 8, "environment": { "DATA": "{{data}}", "LC_ALL": "C" } } ],
              "external_patterns": ["ext/.*"] }
            """);
        return (graph, data);
    }

    /// <summary>
    /// Dispatch latency percentiles over <paramref name="samples"/> and the chain's time per hop; partition names get
    /// <paramref name="tag"/>. The silo's database (<paramref name="database"/>) is analyzed after the warm-up. The chain
    /// runs from h/(<paramref name="builtBelow"/> + <paramref name="hops"/>) down to the first partition whose dependency is
    /// already built in <paramref name="data"/>: h/0 on fresh data, or h/<paramref name="builtBelow"/> built by an earlier chain.
    /// </summary>
    public static async Task<Measurement> MeasureAsync(HttpClient http, string data, int samples, int hops, string tag, string database, int builtBelow = 0)
    {
        await Warmup.UntilJitSettledAsync(async round =>
        {
            for (var i = 0; i < WarmupRound; i++) await DispatchSampleAsync(http, data, $"{tag}warmup{round}-{i}");
        });
        await QuietServer.AnalyzeAsync(database);
        var latencies = new List<double>();
        for (var i = 0; i < samples; i++) latencies.Add(await DispatchSampleAsync(http, data, $"{tag}{i}"));
        latencies.Sort();
        double P(double q) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];

        var chain = Stopwatch.StartNew();
        var top = $"h/{builtBelow + hops}";
        await CreateAsync(http, top);
        // Looked at every 50 ms (a 1,000-hop chain takes over ten seconds: at most 0.05 ms per hop late) through the want
        // list: each look is a request and a query on the two cores the chain runs on, so fewer looks disturb it less.
        await WaitAsync(() => StatusByPartitionAsync(http, top), s => s is "satisfied" or "failed", TimeSpan.FromMinutes(30), ChainPoll);
        return new Measurement(P(0.50), P(0.99), chain.Elapsed.TotalMilliseconds / hops);
    }

    private const int WarmupRound = 25;
    // How often the harness looks at the silo's state outside the measured window: often enough not to idle, rarely
    // enough that its own requests do not load the two cores the measured path runs on.
    private static readonly TimeSpan SetupPoll = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan ChainPoll = TimeSpan.FromMilliseconds(50);

    private static async Task<double> DispatchSampleAsync(HttpClient http, string data, string i)
    {
        await CreateAsync(http, $"d/{i}");
        // The job has run once and reported ext/i missing: the partition waits upstream. The sample starts once that
        // step has settled: the want has heard (upstream_building) and the child want for ext/i waits on it. Until
        // then the previous step's turns would share the cores with the measured path.
        await WaitAsync(async () => (await http.GetFromJsonAsync<JsonElement>($"/api/v1/partitions/d%2F{i}")).GetProperty("status").GetString(),
            s => s == "upstream_waiting", TimeSpan.FromMinutes(1), SetupPoll);
        // (The want list, not the want's page: the page reads the want's timeline from the event log, a heavier query.)
        await WaitAsync(() => StatusByPartitionAsync(http, $"d/{i}"), s => s == "upstream_building", TimeSpan.FromMinutes(1), SetupPoll);
        await WaitAsync(async () => (await http.GetFromJsonAsync<JsonElement>($"/api/v1/partitions/ext%2F{i}")).GetProperty("waiting_wants").GetInt32(),
            n => n == 1, TimeSpan.FromMinutes(1), SetupPoll);
        File.WriteAllText(Path.Combine(data, $"ext_{i}"), "");
        var before = DateTimeOffset.UtcNow;
        using (var available = await http.PostAsync($"/api/v1/partitions/ext%2F{i}/available", null)) available.EnsureSuccessStatusCode();
        // The job's first instruction records $EPOCHREALTIME (seconds, microsecond precision): the process has started.
        var startFile = Path.Combine(data, $"start_{i}");
        var startedSeconds = await WaitAsync(() => Task.FromResult(File.Exists(startFile) ? File.ReadAllText(startFile) : ""),
            text => text.EndsWith('\n'), TimeSpan.FromMinutes(1));
        var startedTicks = (long)(decimal.Parse(startedSeconds.Trim(), CultureInfo.InvariantCulture) * TimeSpan.TicksPerSecond) + DateTimeOffset.UnixEpoch.UtcTicks;
        return (startedTicks - before.UtcTicks) / (double)TimeSpan.TicksPerMillisecond;
    }

    internal static async Task<string> CreateAsync(HttpClient http, string partition)
    {
        using var response = await http.PostAsJsonAsync("/api/v1/wants", new { partitions = new[] { partition } });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("want_id").GetString()!;
    }

    /// <summary>The status of the (one) want for <paramref name="partition"/>, from the want list.</summary>
    private static async Task<string?> StatusByPartitionAsync(HttpClient http, string partition) =>
        (await http.GetFromJsonAsync<JsonElement>($"/api/v1/wants?partition={Uri.EscapeDataString(partition)}")).GetProperty("wants")[0].GetProperty("status").GetString();

    internal static async Task<string?> StatusAsync(HttpClient http, string want) =>
        (await http.GetFromJsonAsync<JsonElement>($"/api/v1/wants/{want}")).GetProperty("status").GetString();

    internal static async Task<T> WaitAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, TimeSpan? every = null)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var value = await probe();
            if (done(value)) return value;
            if (deadline.Elapsed > timeout) throw new TimeoutException($"benchmark step did not finish in {timeout}; it last read {value}");
            await Task.Delay(every ?? TimeSpan.FromMilliseconds(1));
        }
    }
}
