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
        var (doomed, survivor, wantId, runId) = await RunningOnTheFirstOfTwoSilosAsync("longrun/x", leaseSeconds: 3);
        await using (doomed)
        await using (survivor)
        {
            doomed.Kill(); // mid-run: the job process dies with it

            await survivor.UntilWantAsync(wantId, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60),
                "the survivor to finish the want");
            await AssertSucceededOnceOnSecondAttemptAsync(survivor, runId);
        }
    }

    [Fact]
    public async Task A_silo_stopped_cleanly_mid_run_hands_its_run_to_another_silo_without_waiting_for_the_lease()
    {
        // A lease far longer than the deadlines below: only a hand-back lets the other silo run the job in time.
        var (leaving, staying, wantId, runId) = await RunningOnTheFirstOfTwoSilosAsync("longrun/y", leaseSeconds: 300);
        await using (leaving)
        await using (staying)
        {
            leaving.Terminate(); // a rolling deploy: SIGTERM mid-run
            Assert.Equal(0, await leaving.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains($"Job run {runId} (longrun, attempt 1) handed back", leaving.Output);

            await staying.UntilWantAsync(wantId, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(45),
                "the other silo to run the job again and satisfy the want, long before the lease would have run out");
            await AssertSucceededOnceOnSecondAttemptAsync(staying, runId);
            // The killed attempt is not the job's failure: nothing recorded it as one.
            var failures = JsonDocument.Parse(await staying.Http.GetStringAsync($"/api/v1/events?types=job_run_failed&job_run_id={runId}")).RootElement;
            Assert.Empty(failures.GetProperty("events").EnumerateArray());
        }
    }

    /// <summary>
    /// Two silos up, then a want for a 4 s job created on the first, whose turn hands the new run to its own dispatcher:
    /// whatever happens to the first silo next lands mid-run, however slowly a silo starts.
    /// </summary>
    private async Task<(SiloProcess First, SiloProcess Second, string WantId, string RunId)> RunningOnTheFirstOfTwoSilosAsync(string partition, int leaseSeconds)
    {
        var store = $"postgres:{await database.CreateAnotherAsync()}";
        string[] args = ["--graph", JobTestGraph.Write(_folder), $"--Jobs:LeaseSeconds={leaseSeconds}"];
        var first = SiloProcess.Start(store, null, args);
        var second = SiloProcess.Start(store, null, args);
        try
        {
            await first.WaitReadyAsync();
            await second.WaitReadyAsync();
            return await RunningOnFirstAsync(first, second, partition);
        }
        catch
        {
            await first.DisposeAsync();
            await second.DisposeAsync();
            throw;
        }
    }

    private static async Task<(SiloProcess First, SiloProcess Second, string WantId, string RunId)> RunningOnFirstAsync(SiloProcess first, SiloProcess second, string partition)
    {
        var wantId = await first.CreateWantAsync(partition);
        var running = await Eventually.UntilAsync(
            async () => JsonDocument.Parse(await first.Http.GetStringAsync("/api/v1/job-runs?job_label=longrun")).RootElement.Clone(),
            page => page.GetProperty("job_runs").EnumerateArray().Any(r => r.GetProperty("status").GetString() == "running"),
            TimeSpan.FromSeconds(30), "the run to start on the first silo");
        var runId = running.GetProperty("job_runs")[0].GetProperty("job_run_id").GetString()!;
        await Eventually.UntilAsync(() => Task.FromResult(first.Output), o => o.Contains($"Job run {runId}", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the first silo to be the one running it");
        return (first, second, wantId, runId);
    }

    private static async Task AssertSucceededOnceOnSecondAttemptAsync(SiloProcess silo, string runId)
    {
        var run = JsonDocument.Parse(await silo.Http.GetStringAsync($"/api/v1/job-runs/{runId}")).RootElement;
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal(2, run.GetProperty("attempt").GetInt32());
        var successes = JsonDocument.Parse(await silo.Http.GetStringAsync($"/api/v1/events?types=job_run_succeeded&job_run_id={runId}")).RootElement;
        Assert.Single(successes.GetProperty("events").EnumerateArray());
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
