using System.Text.Json;
using DataBuild.Bench;
using DataBuild.Testing;

// dotnet run -c Release --project bench -- [--quick]
var quick = args.Contains("--quick");
// --seconds N lengthens each throughput measurement (for profiling a run from outside).
var secondsAt = Array.IndexOf(args, "--seconds");
var duration = TimeSpan.FromSeconds(secondsAt >= 0 && secondsAt + 1 < args.Length ? int.Parse(args[secondsAt + 1], System.Globalization.CultureInfo.InvariantCulture) : quick ? 1 : 10);
var clients = quick ? 4 : 16;
if (quick) Warmup.Max = TimeSpan.Zero;
// --only NAME[,NAME] runs some groups: grains, ingest, reconciliation (for profiling one path).
var onlyAt = Array.IndexOf(args, "--only");
var only = onlyAt >= 0 && onlyAt + 1 < args.Length ? args[onlyAt + 1].Split(',') : null;
bool Runs(string group) => only is null || only.Contains(group);
// --samples N / --hops N resize the dispatch-latency and chain measurements (for profiling them).
int Sized(string flag, int fallback)
{
    var at = Array.IndexOf(args, flag);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
}

// --job native|bash: the dispatch and chain benchmarks' job, a C program (default) or the same logic in bash.
var jobAt = Array.IndexOf(args, "--job");
if (jobAt >= 0 && jobAt + 1 < args.Length) BenchJob.Kind = args[jobAt + 1] is "bash" or "native" ? args[jobAt + 1] : throw new ArgumentException("--job is native or bash");

Console.WriteLine($"DataBuild benchmarks ({(quick ? "quick" : "full")}): {Environment.ProcessorCount} cores, {clients} clients, {duration.TotalSeconds:0} s per measurement, {BenchJob.Kind} job");
var server = await PostgresServer.StartAsync(durable: true);
var results = new List<BenchResult>();
try
{
    if (Runs("grains")) results.AddRange(await GrainHostBenchmarks.RunAsync(server, clients, duration));
    // --repeat N: dispatch and chain measured N times on fresh silos, medians reported (default 3; 1 with --quick). The ingest
    // and scale groups alternate their measurement and its baseline as many times, and report the pair with the median ratio.
    var repeat = Sized("--repeat", quick ? 1 : 3);
    if (repeat < 1) throw new ArgumentException("--repeat is at least 1");
    if (Runs("ingest")) results.AddRange(await IngestBenchmarks.RunAsync(server, clients: quick ? 8 : 64, duration, slaWants: quick ? 50 : 1000, repeat));
    if (Runs("reconciliation"))
        results.AddRange(await ReconciliationBenchmarks.RunAsync(server, samples: Sized("--samples", quick ? 20 : 1000), hops: Sized("--hops", quick ? 20 : 1000), repeat));
    if (Runs("scale"))
        results.AddRange(await ScaleBenchmarks.RunAsync(server, storedWants: quick ? 2_000 : 1_000_000, activeWants: quick ? 200 : 100_000,
            samples: quick ? 10 : 1000, hops: quick ? 10 : 1000, repeat));
}
finally
{
    server.StopNow();
}

Console.WriteLine();
Console.WriteLine($"{"benchmark",-34} {"value",14} {"unit",-10} {"baseline",12}  {"ratio",7}  goal");
foreach (var r in results)
    Console.WriteLine($"{r.Name,-34} {r.Value.ToString(r.Value < 100 ? "0.00" : "N0", System.Globalization.CultureInfo.InvariantCulture),14} {r.Unit,-10} {r.Baseline?.ToString("N0") ?? "-",12}  {r.Ratio?.ToString("0.000") ?? "-",7}  {r.Goal ?? "-"}{(r.Pass is { } p ? p ? " (met)" : " (missed)" : "")}");

// --results PATH writes elsewhere (the test suite's --quick run does); by default bench/results/latest.json.
var resultsAt = Array.IndexOf(args, "--results");
var folder = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "results");
var path = resultsAt >= 0 && resultsAt + 1 < args.Length
    ? Path.GetFullPath(args[resultsAt + 1])
    : Path.GetFullPath(Path.Combine(Directory.Exists(folder) ? folder : Directory.GetCurrentDirectory(), "latest.json"));
await File.WriteAllTextAsync(path, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"\nwrote {path}");
