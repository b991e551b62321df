using DataBuild.Tests.Infrastructure;
using Npgsql;

namespace DataBuild.Tests.Reconciliation;

/// <summary>
/// A handed-off job run's process starts once its turn's writes have held on the server, while their COMMIT is still
/// being flushed. A commit can fail even then; the run it would have recorded does not exist, so its process must stop
/// and leave nothing behind.
/// </summary>
public sealed class HandOffAheadOfCommitTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-ahead-").FullName;

    [Fact]
    public async Task A_job_started_ahead_of_a_commit_that_then_fails_is_stopped_and_leaves_no_run_and_the_partition_is_built_by_the_next()
    {
        var data = Path.Combine(_folder, "data");
        var connectionString = await database.CreateAnotherAsync();
        await using var silo = SiloProcess.Start($"postgres:{connectionString}", null, "--graph", WriteGraph(data));
        await silo.WaitReadyAsync();
        // The first commit that hands a run of hold/1 to the silo fails at its COMMIT, after every write of it has held
        // (a deferred trigger; a sequence, not rolled back with the commit, lets every later commit through).
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("""
                CREATE SEQUENCE refusals;
                CREATE FUNCTION refuse_first_hand_off() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF nextval('refusals') = 1 THEN RAISE EXCEPTION 'the test refuses this commit'; END IF;
                    RETURN NULL;
                END $$;
                CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON job_runs DEFERRABLE INITIALLY DEFERRED
                   FOR EACH ROW WHEN (NEW.status = 'running' AND NEW.partitions = '["hold/1"]') EXECUTE FUNCTION refuse_first_hand_off();
                """, connection);
            await command.ExecuteNonQueryAsync();
        }

        // hold/2 finds hold/1 missing; hold/1's run is handed off in the commit of that outcome.
        var wantId = await silo.CreateWantAsync("hold/2");
        await silo.UntilWantAsync(wantId, w => w.GetProperty("status").GetString() == "satisfied", TimeSpan.FromSeconds(60), "the want to be satisfied");

        var log = File.ReadAllLines(Path.Combine(data, "log")).Select(l => l.Split(' ')).ToList();
        var hold1Starts = log.Where(l => l[0] == "start" && l[2] == "hold/1").Select(l => l[1]).ToList();
        Assert.Equal(2, hold1Starts.Count); // the run undone, then the one recorded
        var (undone, recorded) = (hold1Starts[0], hold1Starts[1]);
        // The undone run's process was killed: it never reached its end, though it started two seconds before the other's.
        Assert.DoesNotContain(log, l => l[0] == "end" && l[1] == undone);
        Assert.Contains(log, l => l[0] == "end" && l[1] == recorded);

        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT job_run_id, status FROM job_runs WHERE partitions = '[\"hold/1\"]'", connection);
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal((recorded, "succeeded"), (reader.GetString(0), reader.GetString(1)));
            Assert.False(await reader.ReadAsync(), "the undone run left no row");
        }
        var metrics = (await silo.Http.GetStringAsync("/metrics")).Split('\n');
        Assert.Contains("databuild_job_run_undone_total{job=\"hold\"} 1", metrics);
        Assert.Contains($"Job run {undone} (hold) was started as its hand-off's writes were checked, but their commit failed", silo.Output);
    }

    /// <summary>One job: hold/2 needs hold/1; hold/1 takes two seconds. Each run logs its start and its end.</summary>
    private string WriteGraph(string data)
    {
        Directory.CreateDirectory(data);
        var script = Path.Combine(_folder, "hold.sh");
        File.WriteAllText(script, """
            #!/usr/bin/env bash
            set -u
            echo "start $DATABUILD_JOB_RUN_ID $1" >> "$DATA/log"
            case "$1" in
              hold/2) [ -f "$DATA/hold_1" ] || { echo '__DATABUILD_ERROR__::{"missing_deps":["hold/1"]}'; exit 3; } ;;
              hold/1) sleep 2 ;;
            esac
            touch "$DATA/$(printf '%s' "$1" | tr '/' '_')"
            echo "end $DATABUILD_JOB_RUN_ID $1" >> "$DATA/log"
            """.Replace("\r", ""));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var graph = Path.Combine(_folder, "databuild.json");
        File.WriteAllText(graph, $$"""
            { "graph_label": "ahead",
              "jobs": [ { "label": "hold", "entrypoint": "hold.sh", "partition_patterns": ["hold/.*"], "max_concurrency": 4, "retries": 0,
                          "environment": { "DATA": "{{data}}" } } ] }
            """);
        return graph;
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
