using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using DataBuild.Testing;
using Npgsql;

namespace DataBuild.Bench;

/// <summary>
/// Dispatch latency and the deep chain again, on a store holding many wants (most finished, some still
/// active), against the same measurements on an empty store in the same run; and the silo's peak RSS.
/// The silo runs as its own process so that its memory is its own.
/// </summary>
internal static class ScaleBenchmarks
{
    // Fixed-width names: the seeding copies a template's rows (and its serialized state and events) with
    // these strings replaced, which keeps every length, so protobuf and JSON payloads stay valid.
    private const string DoneRef = "ext/scale-done/000000000000";
    private const string LiveRef = "ext/scale-live/000000000000";
    private const string DoneIdPrefix = "5ca1e000-0000-4000-8000-";
    private const string LiveIdPrefix = "5ca1e000-0000-4000-8001-";

    /// <summary>
    /// Seeds the large store, then measures <paramref name="repeat"/> times on each store, alternating (empty, large, empty,
    /// …), and reports for each figure the pair (large, empty, measured one after the other) whose ratio is the median: on
    /// this machine one measurement moves by a quarter between runs of the same code, and a ratio of two by more. Each empty
    /// measurement is on a fresh database; each large one on the seeded store with a fresh silo process.
    /// </summary>
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(PostgresServer server, int storedWants, int activeWants, int samples, int hops, int repeat)
    {
        var root = Directory.CreateTempSubdirectory("databuild-scale-").FullName;
        try
        {
            var (graph, data) = WriteGraphIn(Path.Combine(root, "full"));
            var database = await server.CreateDatabaseAsync("scale");
            var (doneWant, liveWant) = await WithSiloAsync(database, graph, CreateTemplatesAsync);
            var seeding = Stopwatch.StartNew();
            await SeedAsync(database, doneWant, liveWant, storedWants - activeWants, activeWants);
            Console.WriteLine($"  seeded {storedWants:N0} wants ({activeWants:N0} active) in {seeding.Elapsed.TotalSeconds:0} s");

            var empties = new List<ReconciliationBenchmarks.Measurement>();
            var fulls = new List<ReconciliationBenchmarks.Measurement>();
            long peakRssKb = 0;
            for (var i = 0; i < repeat; i++)
            {
                var (emptyGraph, emptyData) = WriteGraphIn(Path.Combine(root, $"empty{i}"));
                var emptyDatabase = await server.CreateDatabaseAsync("scale_empty");
                await QuietServer.CheckpointAsync(server);
                var empty = await WithSiloAsync(emptyDatabase, emptyGraph,
                    http => ReconciliationBenchmarks.MeasureAsync(http, emptyData, samples, hops, "", emptyDatabase));
                empties.Add(empty);

                // The same store each time: new partition names for the samples, and a chain that starts above the last one.
                await QuietServer.CheckpointAsync(server);
                var full = await WithSiloAsync(database, graph, async (http, silo) =>
                {
                    var m = await ReconciliationBenchmarks.MeasureAsync(http, data, samples, hops, $"r{i}-", database, builtBelow: i * hops);
                    peakRssKb = Math.Max(peakRssKb, PeakRssKb(silo));
                    return m;
                });
                fulls.Add(full);
                Console.WriteLine($"  scale run {i + 1} of {repeat}: dispatch p50 {full.P50:0.00} vs {empty.P50:0.00} ms, p99 {full.P99:0.00} vs {empty.P99:0.00} ms; " +
                                  $"chain {full.PerHop:0.00} vs {empty.PerHop:0.00} ms/hop (large store vs empty)");
            }

            var size = storedWants >= 1_000_000 ? $"{storedWants / 1_000_000}m" : $"{storedWants / 1000}k";
            BenchResult Ratio(string name, Func<ReconciliationBenchmarks.Measurement, double> figure)
            {
                var (value, baseline) = Statistics.MedianPair(fulls.Zip(empties, (f, e) => (figure(f), figure(e))), higherIsWorse: true);
                return new($"scale_{size}_{name}", Math.Round(value, 2), "ms", Math.Round(baseline, 2), "same, empty store", Math.Round(value / baseline, 3), "ratio <= 1.5", value / baseline <= 1.5);
            }
            return
            [
                Ratio("dispatch_latency_p50", m => m.P50),
                Ratio("dispatch_latency_p99", m => m.P99),
                Ratio("deep_chain_per_hop", m => m.PerHop),
                new($"scale_{size}_silo_peak_rss", Math.Round(peakRssKb / 1024.0), "MiB", null, null, null, "<= 1024 MiB", peakRssKb <= 1024 * 1024),
            ];
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static (string Graph, string Data) WriteGraphIn(string folder)
    {
        Directory.CreateDirectory(folder);
        return ReconciliationBenchmarks.WriteGraph(folder);
    }

    /// <summary>One want that ends satisfied and one that stays waiting on an external partition: the rows every clone copies.</summary>
    private static async Task<(string Done, string Live)> CreateTemplatesAsync(HttpClient http, Process silo)
    {
        var done = await ReconciliationBenchmarks.CreateAsync(http, DoneRef);
        var live = await ReconciliationBenchmarks.CreateAsync(http, LiveRef);
        using (var available = await http.PostAsync($"/api/v1/partitions/{Uri.EscapeDataString(DoneRef)}/available", null)) available.EnsureSuccessStatusCode();
        await ReconciliationBenchmarks.WaitAsync(() => ReconciliationBenchmarks.StatusAsync(http, done), s => s == "satisfied", TimeSpan.FromMinutes(1));
        // The live want is counted as waiting on its partition (from want_partitions: a quiet want gives the partition no row).
        await ReconciliationBenchmarks.WaitAsync(async () => (await http.GetFromJsonAsync<System.Text.Json.JsonElement>($"/api/v1/partitions/{Uri.EscapeDataString(LiveRef)}")).ToString(),
            s => s.Contains("\"waiting_wants\":1", StringComparison.Ordinal), TimeSpan.FromMinutes(1));
        return (done, live);
    }

    /// <summary>
    /// Copies the templates' rows — read models, grain state, reminders, events and their keys — with the want id
    /// and partition ref replaced, in one statement per table per template (generate_series), then analyzes.
    /// </summary>
    private static async Task SeedAsync(string connectionString, string doneWant, string liveWant, int done, int live)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        async Task Run(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
            await command.ExecuteNonQueryAsync();
        }
        // Event indexes of clones sit below every real one ((xid + offset) << 16 is far above), 16 per clone.
        await Clone(Run, doneWant, DoneRef, DoneIdPrefix, done, eventBase: 0);
        await Clone(Run, liveWant, LiveRef, LiveIdPrefix, live, eventBase: (long)done * 16 + 16);
        await Run("VACUUM ANALYZE");
    }

    private static async Task Clone(Func<string, Task> run, string want, string partition, string idPrefix, int count, long eventBase)
    {
        var refPrefix = partition[..^12];
        var id = $"'{idPrefix}' || lpad(g::text, 12, '0')";
        var newRef = $"'{refPrefix}' || lpad(g::text, 12, '0')";
        string T(string column) => $"replace(replace({column}, '{want}', {id}), '{partition}', {newRef})";
        string B(string column) =>
            $"decode(replace(replace(encode({column}, 'hex'), encode(convert_to('{want}', 'UTF8'), 'hex'), encode(convert_to({id}, 'UTF8'), 'hex')), " +
            $"encode(convert_to('{partition}', 'UTF8'), 'hex'), encode(convert_to({newRef}, 'UTF8'), 'hex')), 'hex')";
        var series = $"generate_series(1, {count}) g";
        var mine = $"grain_key IN ('{want}', '{partition}')";

        await run($"""
            INSERT INTO wants (want_id, status, partitions, data_timestamp, ttl_seconds, sla_seconds, ttl_deadline, sla_deadline, source_type,
                               source_name, comment, parent_want_id, root_want_id, sla_violated, sla_violated_at, created_at, satisfied_at, finished_at, reason)
            SELECT {T("want_id")}, status, {T("partitions")}, data_timestamp, ttl_seconds, sla_seconds, ttl_deadline, sla_deadline, source_type,
                   source_name, comment, parent_want_id, {T("root_want_id")}, sla_violated, sla_violated_at, created_at, satisfied_at, finished_at, reason
              FROM wants, {series} WHERE want_id = '{want}' ORDER BY g
            """);
        await run($"INSERT INTO want_partitions (partition_ref, want_id) SELECT {T("partition_ref")}, {T("want_id")} FROM want_partitions, {series} WHERE want_id = '{want}'");
        await run($"""
            INSERT INTO partitions (partition_ref, status, updated_at, available_at, job_run_id, reason, waiting_wants)
            SELECT {T("partition_ref")}, status, updated_at, available_at, job_run_id, reason, waiting_wants FROM partitions, {series} WHERE partition_ref = '{partition}'
            """);
        await run($"""
            INSERT INTO grain_state (grain_type, grain_key, version, payload, updated_at)
            SELECT grain_type, {T("grain_key")}, version, {B("payload")}, updated_at FROM grain_state, {series} WHERE {mine}
            """);
        await run($"""
            INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
            SELECT grain_type, {T("grain_key")}, {T("name")}, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version FROM reminders, {series} WHERE {mine}
            """);
        await run($"""
            CREATE TEMP TABLE template_events AS
            SELECT e.idx, row_number() OVER (ORDER BY e.idx) AS n FROM bel_events e
             WHERE e.idx IN (SELECT k.idx FROM bel_event_keys k WHERE k.key IN ('{want}', '{partition}'))
            """);
        await run($"""
            INSERT INTO bel_events (idx, event_type, event_time, payload)
            SELECT {eventBase} + g * 16 + t.n, e.event_type, e.event_time, {B("e.payload")}
              FROM template_events t JOIN bel_events e ON e.idx = t.idx, {series}
            """);
        await run($"""
            INSERT INTO bel_event_keys (kind, key, idx)
            SELECT k.kind, {T("k.key")}, {eventBase} + g * 16 + t.n
              FROM template_events t JOIN bel_event_keys k ON k.idx = t.idx, {series}
            """);
        await run("DROP TABLE template_events");
    }

    /// <summary>Runs a silo process on <paramref name="database"/> for the length of <paramref name="body"/>.</summary>
    private static Task<T> WithSiloAsync<T>(string database, string graph, Func<HttpClient, Task<T>> body) =>
        WithSiloAsync(database, graph, (http, _) => body(http));

    private static async Task<T> WithSiloAsync<T>(string database, string graph, Func<HttpClient, Process, Task<T>> body)
    {
        var url = $"http://127.0.0.1:{PostgresServer.FreePort()}";
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "DataBuild.Silo.dll"), "--store", $"postgres:{database}", "--urls", url, "--graph", graph,
                             "--Logging:LogLevel:Default=Warning" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var silo = Process.Start(start) ?? throw new InvalidOperationException("could not start the silo process");
        silo.OutputDataReceived += (_, _) => { };
        silo.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"  silo: {e.Data}"); };
        silo.BeginOutputReadLine();
        silo.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        try
        {
            await ReconciliationBenchmarks.WaitAsync(async () =>
            {
                if (silo.HasExited) throw new InvalidOperationException($"the silo process exited with {silo.ExitCode}");
                try { using var r = await http.GetAsync("/readyz"); return r.IsSuccessStatusCode; }
                catch (HttpRequestException) { return false; }
            }, ready => ready, TimeSpan.FromMinutes(2));
            return await body(http, silo);
        }
        finally
        {
            // Stopped as a deployment stops it (SIGTERM), so that it hands back what it holds and the next silo on the same
            // store does not wait out a dead silo's leases; killed if it has not stopped within a minute.
            if (ProcessSignals.Terminate(silo))
            {
                using var stopped = new CancellationTokenSource(TimeSpan.FromMinutes(1));
                try { await silo.WaitForExitAsync(stopped.Token); }
                catch (OperationCanceledException) { Console.Error.WriteLine("  the silo process did not stop within a minute of SIGTERM; killed"); }
            }
            if (!silo.HasExited) silo.Kill(entireProcessTree: true);
            await silo.WaitForExitAsync();
        }
    }

    /// <summary>The process's peak resident set (VmHWM), in KiB.</summary>
    private static long PeakRssKb(Process process)
    {
        var line = File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
}
