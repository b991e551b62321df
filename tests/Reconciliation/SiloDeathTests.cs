using System.Net.Http.Json;
using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Reconciliation;

/// <summary>Two silo processes on one PostgreSQL database; one dies, or stops cleanly, in the middle of a job run.</summary>
public sealed class SiloDeathTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-death-").FullName;

    [Fact]
    public async Task A_silo_killed_mid_run_has_its_run_taken_over_and_one_success_recorded()
    {
        var store = $"postgres:{await database.CreateAnotherAsync()}";
        var graph = JobTestGraph.Write(_folder);
        string[] args = ["--graph", graph, "--Jobs:LeaseSeconds=3"];
        await using var doomed = SiloProcess.Start(store, null, args);
        await doomed.WaitReadyAsync();
        // Both silos are up before the run starts, so the kill lands mid-run however slowly a silo starts (the
        // job runs for 4 s). The want goes to the doomed silo, whose turn hands the new run to its own dispatcher.
        await using var survivor = SiloProcess.Start(store, null, args);
        await survivor.WaitReadyAsync();

        var wantId = await doomed.CreateWantAsync("longrun/x");
        var running = await Eventually.UntilAsync(
            async () => JsonDocument.Parse(await doomed.Http.GetStringAsync("/api/v1/job-runs?job_label=longrun")).RootElement.Clone(),
            page => page.GetProperty("job_runs").EnumerateArray().Any(r => r.GetProperty("status").GetString() == "running"),
            TimeSpan.FromSeconds(30), "the run to start on the first silo");
        var runId = running.GetProperty("job_runs")[0].GetProperty("job_run_id").GetString();
        await Eventually.UntilAsync(() => Task.FromResult(doomed.Output), o => o.Contains($"Job run {runId}", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the doomed silo to be the one running it");

        doomed.Kill(); // mid-run: the job process dies with it

        var want = await survivor.UntilWantAsync(wantId, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60),
            "the survivor to finish the want");
        var run = JsonDocument.Parse(await survivor.Http.GetStringAsync($"/api/v1/job-runs/{runId}")).RootElement;
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal(2, run.GetProperty("attempt").GetInt32());
        var successes = JsonDocument.Parse(await survivor.Http.GetStringAsync($"/api/v1/events?types=job_run_succeeded&job_run_id={runId}")).RootElement;
        Assert.Single(successes.GetProperty("events").EnumerateArray());
        Assert.Equal("satisfied", want.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_silo_stopped_cleanly_mid_run_hands_its_run_to_another_silo_without_waiting_for_the_lease()
    {
        var store = $"postgres:{await database.CreateAnotherAsync()}";
        var graph = JobTestGraph.Write(_folder);
        // A lease far longer than the deadlines below: only a hand-back lets the other silo run the job in time.
        string[] args = ["--graph", graph, "--Jobs:LeaseSeconds=300"];
        await using var leaving = SiloProcess.Start(store, null, args);
        await leaving.WaitReadyAsync();
        await using var staying = SiloProcess.Start(store, null, args);
        await staying.WaitReadyAsync();

        var wantId = await leaving.CreateWantAsync("longrun/y");
        var running = await Eventually.UntilAsync(
            async () => JsonDocument.Parse(await leaving.Http.GetStringAsync("/api/v1/job-runs?job_label=longrun")).RootElement.Clone(),
            page => page.GetProperty("job_runs").EnumerateArray().Any(r => r.GetProperty("status").GetString() == "running"),
            TimeSpan.FromSeconds(30), "the run to start on the first silo");
        var runId = running.GetProperty("job_runs")[0].GetProperty("job_run_id").GetString();
        await Eventually.UntilAsync(() => Task.FromResult(leaving.Output), o => o.Contains($"Job run {runId}", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the first silo to be the one running it");

        leaving.Terminate(); // a rolling deploy: SIGTERM mid-run
        Assert.Equal(0, await leaving.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains($"Job run {runId} (longrun, attempt 1) handed back", leaving.Output);

        var want = await staying.UntilWantAsync(wantId, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(45),
            "the other silo to run the job again and satisfy the want, long before the lease would have run out");
        var run = JsonDocument.Parse(await staying.Http.GetStringAsync($"/api/v1/job-runs/{runId}")).RootElement;
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal(2, run.GetProperty("attempt").GetInt32());
        var successes = JsonDocument.Parse(await staying.Http.GetStringAsync($"/api/v1/events?types=job_run_succeeded&job_run_id={runId}")).RootElement;
        Assert.Single(successes.GetProperty("events").EnumerateArray());
        // The killed attempt is not the job's failure: the partition did not count it against the job's retries.
        var failures = JsonDocument.Parse(await staying.Http.GetStringAsync($"/api/v1/events?types=job_run_failed&job_run_id={runId}")).RootElement;
        Assert.Empty(failures.GetProperty("events").EnumerateArray());
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
