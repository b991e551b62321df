using System.Net.Http.Json;
using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Reconciliation;

/// <summary>How a silo's job slots are shared between jobs with runs waiting, on a silo process with one slot.</summary>
public sealed class JobSlotSharingTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-slots-").FullName;

    [Fact]
    public async Task A_job_listed_first_with_a_backlog_does_not_keep_another_jobs_run_waiting_for_all_of_it()
    {
        // Regression: every claim offered the free slots to the graph's jobs in the order they are listed, so a job
        // listed later waited until the first job's whole backlog had run.
        await using var silo = SiloProcess.Start($"postgres:{await database.CreateAnotherAsync()}", null, "--graph", WriteGraph(), "--Jobs:Slots=1");
        await silo.WaitReadyAsync();
        var bulk = new List<string>();
        for (var i = 1; i <= 3; i++) bulk.Add(await silo.CreateWantAsync($"bulk/{i}")); // 2 s each: the first runs, two wait
        var small = await silo.CreateWantAsync("small/x");

        await silo.UntilWantAsync(small, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60), "the small job's want");
        var lastBulk = await silo.UntilWantAsync(bulk[^1], _ => true, TimeSpan.FromSeconds(5), "the last bulk want");
        Assert.NotEqual("satisfied", lastBulk.GetProperty("status").GetString());
        foreach (var want in bulk)
            await silo.UntilWantAsync(want, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60), "the bulk wants");
    }

    [Fact]
    public async Task A_run_under_an_SLA_takes_the_next_free_slot_ahead_of_other_jobs_runs()
    {
        await using var silo = SiloProcess.Start($"postgres:{await database.CreateAnotherAsync()}", null, "--graph", WriteGraph(), "--Jobs:Slots=1");
        await silo.WaitReadyAsync();
        var wants = new List<string> { await silo.CreateWantAsync("bulk/1") }; // runs 2 s; everything below waits for it
        foreach (var partition in new[] { "bulk/2", "small/a", "other/a" }) wants.Add(await silo.CreateWantAsync(partition));
        using (var created = await silo.Http.PostAsJsonAsync("/api/v1/wants", new { partitions = new[] { "urgent/a" }, sla_seconds = 3600 }))
        {
            created.EnsureSuccessStatusCode();
            wants.Add((await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("want_id").GetString()!);
        }
        foreach (var want in wants)
            await silo.UntilWantAsync(want, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60), "every want");

        var runs = JsonDocument.Parse(await silo.Http.GetStringAsync("/api/v1/job-runs?limit=100")).RootElement.GetProperty("job_runs").EnumerateArray()
            .OrderBy(r => r.GetProperty("started_at").GetString(), StringComparer.Ordinal)
            .Select(r => r.GetProperty("partitions")[0].GetString()).ToList();
        Assert.Equal(["bulk/1", "urgent/a"], runs.Take(2));
    }

    private string WriteGraph()
    {
        var script = Path.Combine(_folder, "job.sh");
        File.WriteAllText(script, """
            #!/usr/bin/env bash
            if [ "$DATABUILD_JOB_LABEL" = bulk ]; then sleep 2; fi
            exit 0
            """.Replace("\r", ""));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var graph = Path.Combine(_folder, "databuild.json");
        File.WriteAllText(graph, """
            { "graph_label": "slots",
              "jobs": [ { "label": "bulk",  "entrypoint": "job.sh", "partition_patterns": ["bulk/.*"],  "max_concurrency": 4 },
                        { "label": "small", "entrypoint": "job.sh", "partition_patterns": ["small/.*"], "max_concurrency": 4 },
                        { "label": "other", "entrypoint": "job.sh", "partition_patterns": ["other/.*"], "max_concurrency": 4 },
                        { "label": "urgent", "entrypoint": "job.sh", "partition_patterns": ["urgent/.*"], "max_concurrency": 4 } ] }
            """);
        return graph;
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
