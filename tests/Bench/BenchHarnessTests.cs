using System.Diagnostics;
using System.Text.Json;

namespace DataBuild.Tests.Bench;

/// <summary>The benchmark harness in --quick mode, so it cannot rot: it runs end to end and writes every result.</summary>
public sealed class BenchHarnessTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-bench-quick-").FullName;

    [Fact]
    public async Task The_quick_benchmark_run_measures_everything_and_writes_results()
    {
        var results = Path.Combine(_folder, "latest.json");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "DataBuild.Bench.dll"), "--quick", "--results", results }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"bench exited {process.ExitCode}:\n{await stdout}\n{await stderr}");

        var entries = JsonDocument.Parse(await File.ReadAllTextAsync(results)).RootElement.EnumerateArray().ToList();
        var names = entries.Select(e => e.GetProperty("name").GetString()).ToList();
        foreach (var expected in new[] { "grain_turns_persisted_postgres", "ingest_wants_postgres", "ingest_http_floor", "sla_lateness_p99", "ingest_wants_sqlite", "dispatch_latency_p50", "dispatch_latency_p99" })
            Assert.Contains(expected, names);
        Assert.All(entries, e => Assert.True(e.GetProperty("value").GetDouble() > 0, $"{e.GetProperty("name")} measured nothing"));
        Assert.All(entries.Where(e => e.GetProperty("baseline").ValueKind == JsonValueKind.Number), e => Assert.True(e.GetProperty("ratio").GetDouble() > 0));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
