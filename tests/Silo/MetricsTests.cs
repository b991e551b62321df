using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using DataBuild.Tests.Infrastructure;
using DataBuild.Tests.Reconciliation;

namespace DataBuild.Tests.Silo;

/// <summary>GET /metrics on a silo process: Prometheus text that counts what the silo did.</summary>
public sealed partial class MetricsTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-metrics-").FullName;

    [GeneratedRegex("""^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.]+(e[-+]?[0-9]+)?|NaN|[+-]Inf)$""", RegexOptions.IgnoreCase)]
    private static partial Regex Sample();

    [Fact]
    public async Task A_silo_that_built_a_partition_reports_its_turns_commits_job_runs_and_requests_in_prometheus_text()
    {
        await using var silo = SiloProcess.Start($"postgres:{await database.CreateAnotherAsync()}", null, "--graph", JobTestGraph.Write(_folder));
        await silo.WaitReadyAsync();
        await silo.UntilWantAsync(await silo.CreateWantAsync("leaf/metrics"),
            w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60), "the want to be satisfied");

        // The run's outcome is recorded after its process exits: wait for the metric rather than race it.
        var text = await Eventually.UntilAsync(() => silo.Http.GetStringAsync("/metrics"),
            t => t.Contains("databuild_job_run_duration_seconds_count{job=\"leaf\",status=\"succeeded\"} ", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the run's duration to be recorded");
        using var response = await silo.Http.GetAsync("/metrics");
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());

        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, line => Assert.True(line.StartsWith('#') || Sample().IsMatch(line), $"not a Prometheus sample: {line}"));
        double Value(string series) =>
            double.Parse(lines.Single(l => l.StartsWith(series + " ", StringComparison.Ordinal))[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);

        // At least once: on a slow machine a run whose lease ran out is started again.
        Assert.True(Value("databuild_job_run_started_total{job=\"leaf\"}") >= 1);
        Assert.Contains("# TYPE databuild_job_run_duration_seconds histogram", lines);
        Assert.Equal(Value("databuild_job_run_duration_seconds_count{job=\"leaf\",status=\"succeeded\"}"),
            Value("databuild_job_run_duration_seconds_bucket{job=\"leaf\",status=\"succeeded\",le=\"+Inf\"}"));
        // The want's and the partition's turns committed, through PostgreSQL group commits (a message's turn may share
        // its sender's group), and messages were delivered (after their sender's commit, or joined to it).
        Assert.True(Value("databuild_grain_turns_total{grain_type=\"want\",outcome=\"committed\"}") >= 2);
        Assert.True(Value("databuild_grain_turns_total{grain_type=\"partition\",outcome=\"committed\"}") >= 2);
        Assert.True(Value("databuild_store_commit_group_turns_sum") >= 4);
        Assert.True(lines.Where(l => l.StartsWith("databuild_reminder_deliveries_total{outcome=\"", StringComparison.Ordinal)
                && (l.Contains("\"delivered\"", StringComparison.Ordinal) || l.Contains("\"joined\"", StringComparison.Ordinal)))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)) >= 2);
        // ASP.NET Core's request durations and the runtime's own metrics come with them.
        Assert.Contains(lines, l => l.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal) && l.Contains("http_route=\"/api/v1/wants/\""));
        Assert.Contains(lines, l => l.StartsWith("dotnet_process_memory_working_set_bytes ", StringComparison.Ordinal));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
