using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using DataBuild.Silo;
using DataBuild.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;

namespace DataBuild.Bench;

/// <summary>
/// Wants created per second over HTTP on loopback (many concurrent clients, one partition per want) against
/// the store's own single-row insert rate in the same run; and SLA precision under a burst of deadlines.
/// </summary>
internal static class IngestBenchmarks
{
    private const string Graph = """
        { "graph_label": "ingest", "jobs": [], "external_patterns": ["ext/.*"] }
        """;

    /// <summary>
    /// pgbench and the silo's ingest are measured alternately, <paramref name="repeat"/> times each, and the pair whose ratio
    /// is the median is reported: on this VM pgbench alone moved between 10,573 and 27,287 inserts a second across runs, and
    /// a single pair's ratio moved with it. No silo runs while pgbench does; each ingest measurement starts a silo on a fresh
    /// database (as pgbench gets a fresh table), warms it up, measures, and stops it. The server writes out what the last
    /// measurement left dirty (a CHECKPOINT) before each.
    /// </summary>
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(PostgresServer server, int clients, TimeSpan duration, int slaWants, int repeat)
    {
        var folder = Directory.CreateTempSubdirectory("databuild-ingest-").FullName;
        var graph = Path.Combine(folder, "databuild.json");
        await File.WriteAllTextAsync(graph, Graph);
        var results = new List<BenchResult>();
        try
        {
            var pairs = new List<(double Wants, double Inserts)>();
            var (slaP99, refusals) = (0.0, 0.0);
            for (var i = 0; i < repeat; i++)
            {
                await QuietServer.CheckpointAsync(server);
                var inserts = await PgbenchInsertsAsync(server, clients, duration);
                var store = $"postgres:{await server.CreateDatabaseAsync("ingest")}";
                await QuietServer.CheckpointAsync(server);
                var last = i == repeat - 1;
                (var created, slaP99, refusals) = await WithSiloAsync(store, graph, async http =>
                    (await IngestAsync(http, clients, duration, $"pg{i}"),
                     last ? await SlaPrecisionAsync(http, slaWants) : 0,
                     last ? await CreateForAsync(http, clients, duration, "refused", refused: true) : 0));
                pairs.Add((created, inserts));
                Console.WriteLine($"  ingest run {i + 1} of {repeat}: {created:N0} wants/s against pgbench's {inserts:N0} inserts/s: {created / inserts:0.000}");
            }
            var (pgWants, pgInserts) = Statistics.MedianPair(pairs, higherIsWorse: false);
            results.Add(new("ingest_wants_postgres", Math.Round(pgWants), "wants/s", Math.Round(pgInserts), "pgbench single-row INSERT tps",
                Math.Round(pgWants / pgInserts, 3), "ratio >= 0.5", pgWants / pgInserts >= 0.5));
            // Not a goal: what the HTTP exchange alone costs, with the same clients on the same two cores.
            results.Add(new("ingest_http_floor", Math.Round(refusals), "requests/s", Math.Round(pgInserts), "pgbench single-row INSERT tps",
                Math.Round(refusals / pgInserts, 3), null, null));
            results.Add(new("sla_lateness_p99", Math.Round(slaP99), "ms", null, null, null, "<= 1000 ms", slaP99 <= 1000));

            var sqlitePath = Path.Combine(folder, "embedded.db");
            var sqliteWants = await WithSiloAsync($"sqlite:{sqlitePath}", graph, http => IngestAsync(http, clients, duration, "lite"));
            var sqliteInserts = await RawSqliteInsertsAsync(Path.Combine(folder, "raw.db"), duration);
            results.Add(new("ingest_wants_sqlite", Math.Round(sqliteWants), "wants/s", Math.Round(sqliteInserts), "raw SQLite single-row INSERT/s (WAL, synchronous=FULL)",
                Math.Round(sqliteWants / sqliteInserts, 3), null, null));
            return results;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<T> WithSiloAsync<T>(string store, string graph, Func<HttpClient, Task<T>> body)
    {
        var url = $"http://127.0.0.1:{PostgresServer.FreePort()}";
        var app = SiloApplication.Build(["--store", store, "--urls", url, "--graph", graph, "--Logging:LogLevel:Default=Warning"]);
        await app.StartAsync();
        try
        {
            using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 256 };
            using var http = new HttpClient(handler) { BaseAddress = new Uri(url) };
            return await body(http);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static readonly TimeSpan WarmupRound = TimeSpan.FromSeconds(2);

    private static async Task<double> IngestAsync(HttpClient http, int clients, TimeSpan duration, string prefix)
    {
        await Warmup.UntilJitSettledAsync(round => CreateForAsync(http, clients, WarmupRound, $"{prefix}-warmup{round}"));
        return await CreateForAsync(http, clients, duration, prefix);
    }

    /// <summary>
    /// Wants created per second by <paramref name="clients"/> clients, each posting one after the other; with
    /// <paramref name="refused"/>, wants of partitions nothing produces, which the API refuses (422) after reading and
    /// checking the whole request, before any grain or database is involved: the HTTP floor under the same clients.
    /// </summary>
    private static async Task<double> CreateForAsync(HttpClient http, int clients, TimeSpan duration, string prefix, bool refused = false)
    {
        long created = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            for (var i = 0; clock.Elapsed < duration; i++)
            {
                using var response = await http.PostAsJsonAsync("/api/v1/wants", new { partitions = new[] { $"{(refused ? "unowned" : "ext")}/{prefix}/{c}/{i}" } });
                if (!refused) response.EnsureSuccessStatusCode();
                else if (response.StatusCode != System.Net.HttpStatusCode.UnprocessableEntity)
                    throw new InvalidOperationException($"a want of a partition nothing produces was answered {(int)response.StatusCode}, not 422");
                Interlocked.Increment(ref created);
            }
        })));
        return created / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Wants whose SLA deadlines fall within one second: p99 of sla_violated_at behind the deadline, in ms.</summary>
    private static async Task<double> SlaPrecisionAsync(HttpClient http, int count)
    {
        // Deadlines start far enough out that creating the wants finishes first.
        var first = DateTimeOffset.UtcNow.AddSeconds(count <= 100 ? 3 : 10);
        var ids = new string[count];
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            var dataTimestamp = first.AddMilliseconds(i * 1000.0 / count).AddSeconds(-1);
            using var response = await http.PostAsJsonAsync("/api/v1/wants", new
            {
                partitions = new[] { $"ext/sla/{i}" },
                data_timestamp = dataTimestamp.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                sla_seconds = 1,
            }, ct);
            response.EnsureSuccessStatusCode();
            ids[i] = (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("want_id").GetString()!;
        });
        if (DateTimeOffset.UtcNow > first) throw new InvalidOperationException("creating the SLA wants took longer than their head start");
        var lateness = new List<double>();
        var deadline = Stopwatch.StartNew();
        while (lateness.Count < count && deadline.Elapsed < TimeSpan.FromMinutes(2))
        {
            await Task.Delay(500);
            lateness.Clear();
            string? after = null;
            do
            {
                var page = await http.GetFromJsonAsync<JsonElement>($"/api/v1/wants?limit=1000{(after is null ? "" : $"&after={after}")}");
                foreach (var w in page.GetProperty("wants").EnumerateArray())
                {
                    if (!w.GetProperty("sla_violated").GetBoolean()) continue;
                    var due = DateTimeOffset.Parse(w.GetProperty("sla_deadline").GetString()!, CultureInfo.InvariantCulture);
                    var at = DateTimeOffset.Parse(w.GetProperty("sla_violated_at").GetString()!, CultureInfo.InvariantCulture);
                    lateness.Add((at - due).TotalMilliseconds);
                }
                after = page.GetProperty("next_after").GetString();
            } while (after is not null);
        }
        if (lateness.Count < count) throw new InvalidOperationException($"only {lateness.Count} of {count} SLA violations were flagged");
        lateness.Sort();
        return lateness[(int)Math.Ceiling(0.99 * lateness.Count) - 1];
    }

    private static async Task<double> PgbenchInsertsAsync(PostgresServer server, int clients, TimeSpan duration)
    {
        var connectionString = await server.CreateDatabaseAsync("pginsert");
        await using (var connection = new Npgsql.NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var create = new Npgsql.NpgsqlCommand("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, ref text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())", connection);
            await create.ExecuteNonQueryAsync();
        }
        var database = new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Database!;
        var script = Path.GetTempFileName();
        await File.WriteAllTextAsync(script, "INSERT INTO bench_rows (ref) VALUES ('ext/' || random());\n");
        var output = await GrainHostBenchmarks.CaptureAsync(Path.Combine(server.BinDir ?? "/usr/bin", "pgbench"),
            ["-h", server.Host, "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-n", "-M", "prepared",
             "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", "2", "-T", Math.Max(1, (int)duration.TotalSeconds).ToString(CultureInfo.InvariantCulture), "-f", script, database]);
        File.Delete(script);
        var line = output.Split('\n').First(l => l.StartsWith("tps = ", StringComparison.Ordinal));
        return double.Parse(line["tps = ".Length..].Split(' ')[0], CultureInfo.InvariantCulture);
    }

    /// <summary>One row per transaction on one connection, with the embedded store's durability settings.</summary>
    private static async Task<double> RawSqliteInsertsAsync(string path, TimeSpan duration)
    {
        await using var connection = new SqliteConnection($"Data Source={path}");
        await connection.OpenAsync();
        await using (var setup = connection.CreateCommand())
        {
            setup.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, ref TEXT NOT NULL, created_at INTEGER NOT NULL);";
            await setup.ExecuteNonQueryAsync();
        }
        await using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO bench_rows (ref, created_at) VALUES ($r, $t)";
        var r = insert.Parameters.Add("$r", SqliteType.Text);
        var t = insert.Parameters.Add("$t", SqliteType.Integer);
        long rows = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            r.Value = $"ext/{rows}";
            t.Value = rows;
            await insert.ExecuteNonQueryAsync(); // autocommit: one transaction, one fsync, per row
            rows++;
        }
        return rows / clock.Elapsed.TotalSeconds;
    }
}
