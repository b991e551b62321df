using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Reconciliation;

/// <summary>
/// How a silo's job slots are shared between jobs with runs waiting, on a silo process with one slot. The first run
/// (bulk/1) holds the slot until the test opens a gate, once every other run is queued behind it; the order the
/// queued runs then started in is read from their start times.
/// </summary>
public sealed class JobSlotSharingTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-slots-").FullName;
    private string Gate => Path.Combine(_folder, "go");

    [Fact]
    public async Task A_job_listed_first_with_a_backlog_does_not_keep_another_jobs_run_waiting_for_all_of_it()
    {
        // Regression: every claim offered the free slot to the graph's jobs in the order they are listed, so a job
        // listed later waited until the first job's whole backlog had run.
        var order = await StartOrderAsync(("bulk/1", null), ("bulk/2", null), ("bulk/3", null), ("small/x", null));
        Assert.True(order.IndexOf("small/x") < order.IndexOf("bulk/3"), $"started in the order {string.Join(", ", order)}");
    }

    [Fact]
    public async Task A_run_under_an_SLA_takes_the_next_free_slot_ahead_of_other_jobs_runs()
    {
        var order = await StartOrderAsync(("bulk/1", null), ("bulk/2", null), ("small/a", null), ("other/a", null), ("urgent/a", 3600));
        Assert.Equal(["bulk/1", "urgent/a"], order.Take(2));
    }

    /// <summary>Wants for <paramref name="wants"/> (partition, SLA seconds) in order on a one-slot silo; the partitions in the order their runs started.</summary>
    private async Task<List<string>> StartOrderAsync(params (string Partition, int? SlaSeconds)[] wants)
    {
        await using var silo = SiloProcess.Start($"postgres:{await database.CreateAnotherAsync()}", null, "--graph", WriteGraph(), "--Jobs:Slots=1");
        await silo.WaitReadyAsync();
        var ids = new List<string>();
        foreach (var (partition, sla) in wants)
            ids.Add(await silo.PostWantAsync(new { partitions = new[] { partition }, sla_seconds = sla }));
        await Eventually.UntilAsync(async () => (await RunsAsync(silo)).Count(r => r.GetProperty("status").GetString() == "queued"),
            n => n == wants.Length - 1, TimeSpan.FromSeconds(30), "every run but the first to be queued behind it");
        File.WriteAllText(Gate, "");
        foreach (var id in ids)
            await silo.UntilWantAsync(id, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60), "every want");
        return (await RunsAsync(silo)).OrderBy(r => r.GetProperty("started_at").GetString(), StringComparer.Ordinal)
            .Select(r => r.GetProperty("partitions")[0].GetString()!).ToList();
    }

    private static async Task<List<JsonElement>> RunsAsync(SiloProcess silo) =>
        JsonDocument.Parse(await silo.Http.GetStringAsync("/api/v1/job-runs?limit=100")).RootElement.GetProperty("job_runs").EnumerateArray().ToList();

    private string WriteGraph()
    {
        var script = Path.Combine(_folder, "job.sh");
        File.WriteAllText(script, """
            #!/usr/bin/env bash
            # bulk runs wait for the test's gate; every other job ends at once
            if [ "$DATABUILD_JOB_LABEL" = bulk ]; then while [ ! -f "$GATE" ]; do sleep 0.02; done; fi
            exit 0
            """.Replace("\r", ""));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var graph = Path.Combine(_folder, "databuild.json");
        File.WriteAllText(graph, $$"""
            { "graph_label": "slots",
              "jobs": [ { "label": "bulk",   "entrypoint": "job.sh", "partition_patterns": ["bulk/.*"],   "max_concurrency": 4, "environment": { "GATE": "{{Gate}}" } },
                        { "label": "small",  "entrypoint": "job.sh", "partition_patterns": ["small/.*"],  "max_concurrency": 4 },
                        { "label": "other",  "entrypoint": "job.sh", "partition_patterns": ["other/.*"],  "max_concurrency": 4 },
                        { "label": "urgent", "entrypoint": "job.sh", "partition_patterns": ["urgent/.*"], "max_concurrency": 4 } ] }
            """);
        return graph;
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
