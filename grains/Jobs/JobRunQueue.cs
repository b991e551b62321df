using System.Data.Common;
using System.Text.Json;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Runtime.EventLog;
using DataBuild.Runtime.Storage;

namespace DataBuild.Grains.Jobs;

public sealed record JobRunRow(
    string JobRunId, string JobLabel, string Status, IReadOnlyList<string> Partitions, int Attempt, long? SlaDeadline, long DataTimestamp,
    long CreatedAt, long? StartedAt, long? FinishedAt, long Version, string? LeaseOwner, int? ExitCode, string? Reason, IReadOnlyList<string> MissingDeps);

/// <summary>Asks <see cref="JobRunQueue.EnqueueAsync"/> to start the run on <paramref name="SiloId"/> at once if it may.</summary>
public sealed record ClaimOnQueue(string SiloId, long LeaseMs);

/// <summary>The run a partition was queued into, and the run as claimed when the enqueue also claimed it.</summary>
public sealed record QueuedRun(string RunId, JobRunRow? Claimed);

/// <summary>
/// The queue of job runs. Partitions enqueue inside their own turn's transaction (joining a queued run of
/// the same job while it has room: batching up to max_batch); silos claim runs in SLA order under the
/// job's cluster-wide concurrency limit; a run completes only on the version its claimer holds.
/// </summary>
public sealed class JobRunQueue(IDataStore store)
{
    public const string Columns = """
        job_run_id, job_label, status, partitions, attempt, sla_deadline, data_timestamp, created_at, started_at, finished_at,
        version, lease_owner, exit_code, reason, missing_deps
        """;

    /// <summary>
    /// Adds a partition to a queued run of its job with room, or queues a new run. With <paramref name="claim"/>,
    /// a new run of a job that does not batch is claimed for that silo in the same transaction when nothing else
    /// of the job waits and the job has room (a hand-off: no wake-up, no claim transaction); when the job's claim
    /// lock is busy it is simply queued, so enqueues never wait on each other.
    /// </summary>
    public async Task<QueuedRun> EnqueueAsync(StoreTransaction tx, JobConfig job, string partitionRef, long? slaDeadline, long dataTimestamp, long now,
        CancellationToken ct, ClaimOnQueue? claim = null)
    {
        if (claim is not null && job.MaxBatch == 1)
        {
            // PostgreSQL: optimistic. The run is written as claimed and the commit's own batch checks, after the
            // turn's other writes, that it may start (HandOffRefusedException: the turn runs again and queues).
            // SQLite, whose one writer holds the whole file, asks first.
            if (tx.IsPostgres())
                tx.DeferCheck(() => new HandOffRefusedException(job.Label), "SELECT databuild_hand_off_check($1, $2, $3, $4, $5)",
                    AdvisoryLockKey.For($"job:{job.Label}"), job.Label, (long)job.MaxConcurrency, now);
            if (tx.IsPostgres() || await SqliteMayClaimNowAsync(tx, job, now, ct))
            {
                var run = new JobRunRow(Guid.NewGuid().ToString(), job.Label, JobRunStatus.Running, [partitionRef], 1, slaDeadline, dataTimestamp,
                    now, now, null, 1, claim.SiloId, null, null, []);
                tx.Defer("""
                    INSERT INTO job_runs (job_run_id, job_label, status, partitions, ref_count, sla_deadline, data_timestamp, attempt, created_at,
                                          started_at, lease_owner, lease_until, version)
                    VALUES ($1, $2, 'running', $3, 1, $4, $5, 1, $6, $6, $7, $8, 1)
                    """, run.JobRunId, job.Label, JsonSerializer.Serialize(run.Partitions), Sql.Arg(slaDeadline), dataTimestamp, now, claim.SiloId, now + claim.LeaseMs);
                return new QueuedRun(run.JobRunId, run);
            }
        }
        await tx.FlushAsync(ct); // the turn's fence and earlier writes go first
        var lockClause = tx.IsPostgres() ? " FOR UPDATE SKIP LOCKED" : "";
        string? runId = null;
        List<string>? partitions = null;
        if (job.MaxBatch > 1)
        {
            await using var find = tx.Command($"SELECT job_run_id, partitions FROM job_runs WHERE job_label = $1 AND status = 'queued' AND ref_count < $2 ORDER BY seq LIMIT 1{lockClause}",
                job.Label, job.MaxBatch);
            await using var reader = await find.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct)) (runId, partitions) = (reader.GetString(0), JsonSerializer.Deserialize<List<string>>(reader.GetString(1))!);
        }
        if (runId is not null)
        {
            partitions!.Add(partitionRef);
            await using var update = tx.Command("""
                UPDATE job_runs SET partitions = $2, ref_count = ref_count + 1, version = version + 1,
                       sla_deadline = CASE WHEN sla_deadline IS NULL OR (CAST($3 AS bigint) IS NOT NULL AND CAST($3 AS bigint) < sla_deadline) THEN CAST($3 AS bigint) ELSE sla_deadline END,
                       data_timestamp = CASE WHEN $4 < data_timestamp THEN $4 ELSE data_timestamp END
                 WHERE job_run_id = $1
                """, runId, JsonSerializer.Serialize(partitions), Sql.Arg(slaDeadline), dataTimestamp);
            await update.ExecuteNonQueryAsync(ct);
            return new QueuedRun(runId, null);
        }
        runId = Guid.NewGuid().ToString();
        await using var insert = tx.Command("""
            INSERT INTO job_runs (job_run_id, job_label, status, partitions, ref_count, sla_deadline, data_timestamp, attempt, created_at, version)
            VALUES ($1, $2, 'queued', $3, 1, $4, $5, 0, $6, 1)
            """, runId, job.Label, JsonSerializer.Serialize(new[] { partitionRef }), Sql.Arg(slaDeadline), dataTimestamp, now);
        await insert.ExecuteNonQueryAsync(ct);
        return new QueuedRun(runId, null);
    }

    /// <summary>
    /// SQLite: true when a run of <paramref name="job"/> may start now without jumping the queue: no run of the job
    /// waits, and it has room under max_concurrency (the file's one writer serialises this with every claim).
    /// PostgreSQL makes the same check on the server, in the commit (007_hand_off_check.sql).
    /// </summary>
    private static async Task<bool> SqliteMayClaimNowAsync(StoreTransaction tx, JobConfig job, long now, CancellationToken ct)
    {
        await tx.FlushAsync(ct);
        await using var command = tx.Command("""
            SELECT COUNT(*) FILTER (WHERE status = 'running' AND lease_until >= $2),
                   COUNT(*) FILTER (WHERE status = 'queued' OR (status = 'running' AND lease_until < $2))
              FROM job_runs WHERE job_label = $1 AND status IN ('queued', 'running')
            """, job.Label, now);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) && reader.GetInt64(0) < job.MaxConcurrency && reader.GetInt64(1) == 0;
    }

    /// <summary>
    /// Takes a partition out of a run that has not started; a run left with no partition is cancelled.
    /// Returns the run's status afterwards (queued, cancelled), or null if it had already been claimed.
    /// </summary>
    public async Task<string?> WithdrawAsync(StoreTransaction tx, string runId, string partitionRef, string reason, long now, CancellationToken ct)
    {
        await tx.FlushAsync(ct); // the turn's fence and earlier writes go first
        var lockClause = tx.IsPostgres() ? " FOR UPDATE" : "";
        List<string> partitions;
        await using (var find = tx.Command($"SELECT partitions FROM job_runs WHERE job_run_id = $1 AND status = 'queued'{lockClause}", runId))
        {
            if (await find.ExecuteScalarAsync(ct) is not string json) return null;
            partitions = JsonSerializer.Deserialize<List<string>>(json)!;
        }
        partitions.Remove(partitionRef);
        var status = partitions.Count == 0 ? JobRunStatus.Cancelled : JobRunStatus.Queued;
        await using var update = tx.Command("""
            UPDATE job_runs SET partitions = $2, ref_count = $3, status = $4, version = version + 1,
                   finished_at = CASE WHEN $4 = 'cancelled' THEN $5 ELSE finished_at END,
                   reason = CASE WHEN $4 = 'cancelled' THEN $6 ELSE reason END
             WHERE job_run_id = $1
            """, runId, JsonSerializer.Serialize(partitions), partitions.Count, status, now, reason);
        await update.ExecuteNonQueryAsync(ct);
        return status;
    }

    /// <summary>
    /// The jobs with a run to claim now (queued, or running on a lease that ran out), each with the earliest SLA deadline
    /// among those runs (null: none has one): one cheap read before any claim.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, long?>> ClaimableJobsAsync(long now, CancellationToken ct)
    {
        await using var connection = await store.OpenConnectionAsync(ct);
        await using var command = Sql.Command(connection, null, """
            SELECT job_label, MIN(sla_deadline) FROM (
                   SELECT job_label, sla_deadline FROM job_runs WHERE status = 'queued'
                   UNION ALL
                   SELECT job_label, sla_deadline FROM job_runs WHERE status = 'running' AND lease_until < $1) claimable
             GROUP BY job_label
            """, now);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var jobs = new Dictionary<string, long?>(StringComparer.Ordinal);
        while (await reader.ReadAsync(ct)) jobs[reader.GetString(0)] = reader.IsDBNull(1) ? null : reader.GetInt64(1);
        return jobs;
    }

    /// <summary>
    /// Claims up to <paramref name="slots"/> runs of one job for this silo, earliest SLA first, never letting
    /// the job's running count across the cluster exceed max_concurrency. Runs whose lease ran out (their
    /// silo died) are claimed again, as a new attempt of the same run.
    /// </summary>
    public async Task<IReadOnlyList<JobRunRow>> ClaimAsync(JobConfig job, string siloId, int slots, TimeProvider clock, long leaseMs, CancellationToken ct)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await using var tx = await store.BeginAsync(ct);
        var postgres = tx.IsPostgres();
        const string countRunning = "SELECT COUNT(*) FROM job_runs WHERE job_label = $1 AND status = 'running' AND lease_until >= $2";
        long running;
        if (postgres)
        {
            // Serialise claims per job so the running count cannot be raced past max_concurrency.
            running = await tx.LockThenQueryAsync(AdvisoryLockKey.For($"job:{job.Label}"),
                async reader => await reader.ReadAsync(ct) ? reader.GetInt64(0) : 0, ct, countRunning, job.Label, now);
        }
        else
        {
            await using var count = tx.Command(countRunning, job.Label, now);
            running = Convert.ToInt64(await count.ExecuteScalarAsync(ct));
        }
        var room = (int)Math.Min(slots, job.MaxConcurrency - running);
        if (room <= 0) return [];
        // Read again after the count: the count may have seen a run that finished while this claim waited for it,
        // and a run must not look as if it started before the run whose slot it takes had finished.
        var startedAt = Math.Max(now, clock.GetUtcNow().ToUnixTimeMilliseconds());
        var sql = $"""
            UPDATE job_runs SET status = 'running', lease_owner = $2, lease_until = $3, attempt = attempt + 1, started_at = $6, version = version + 1
             WHERE job_run_id IN (
                   SELECT job_run_id FROM job_runs
                    WHERE job_label = $1 AND (status = 'queued' OR (status = 'running' AND lease_until < $4))
                    ORDER BY CASE WHEN sla_deadline IS NULL THEN 1 ELSE 0 END, sla_deadline, data_timestamp, seq
                    LIMIT $5{(postgres ? " FOR UPDATE SKIP LOCKED" : "")})
            RETURNING {Columns}
            """;
        var claimed = new List<JobRunRow>();
        await using (var claim = tx.Command(sql, job.Label, siloId, startedAt + leaseMs, now, room, startedAt))
        await using (var reader = await claim.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct)) claimed.Add(Read(reader));
        }
        if (claimed.Count > 0)
        {
            store.Events.AppendDeferred(tx, claimed.Select(run => StartedEvent(run, siloId)).ToList());
        }
        await tx.CommitAsync(ct);
        return claimed;
    }

    public static Protos.DataBuildEvent StartedEvent(JobRunRow run, string siloId) => new()
    {
        JobRunStarted = new Protos.JobRunStartedEventV1
        {
            JobRunId = run.JobRunId, JobLabel = run.JobLabel, SiloId = siloId, Attempt = (uint)run.Attempt,
            Partitions = { run.Partitions.Select(p => new Protos.PartitionRef { Str = p }) },
        },
    };

    /// <summary>Extends a claim. False when the claim was lost (its lease ran out and another silo took the run).</summary>
    public Task<bool> RenewAsync(JobRunRow run, string siloId, long until, CancellationToken ct) =>
        UpdateClaimAsync("lease_until = $4", run, siloId, ct, until);

    /// <summary>
    /// Hands a claimed run back before its lease runs out (this silo is stopping): its lease ends now, so any silo claims
    /// it at once as a new attempt, as it would a dead silo's run once the lease had run out. Fenced by the claim's
    /// version: false when the claim was lost already.
    /// </summary>
    public Task<bool> HandBackAsync(JobRunRow run, string siloId, CancellationToken ct) =>
        UpdateClaimAsync("lease_until = 0, version = version + 1", run, siloId, ct);

    /// <summary>Sets <paramref name="set"/> on the run while this silo's claim (its version) holds: false when it no longer does.</summary>
    private async Task<bool> UpdateClaimAsync(string set, JobRunRow run, string siloId, CancellationToken ct, params object?[] extra)
    {
        await using var tx = await store.BeginAsync(ct);
        await using var command = tx.Command(
            $"UPDATE job_runs SET {set} WHERE job_run_id = $1 AND version = $2 AND lease_owner = $3 AND status = 'running'",
            [run.JobRunId, run.Version, siloId, .. extra]);
        var updated = await command.ExecuteNonQueryAsync(ct) == 1;
        await tx.CommitAsync(ct);
        return updated;
    }

    /// <summary>
    /// Records a run's outcome, fenced by the claim's version, deferred to the commit: the commit fails with
    /// <see cref="StaleJobRunClaimException"/> if another claim superseded this one (and then records nothing).
    /// </summary>
    public static void Complete(StoreTransaction tx, JobRunRow run, string status, long now, int? pid, int? exitCode, string? reason,
        IReadOnlyList<string> missingDeps, string stdout, string stderr) =>
        tx.DeferExpecting(1, () => new StaleJobRunClaimException(run.JobRunId), """
            UPDATE job_runs SET status = $3, finished_at = $4, pid = $5, exit_code = $6, reason = $7, missing_deps = $8, stdout = $9, stderr = $10,
                   lease_owner = NULL, lease_until = NULL, version = version + 1
             WHERE job_run_id = $1 AND version = $2 AND status = 'running'
            """, run.JobRunId, run.Version, status, now, Sql.Arg(pid), Sql.Arg(exitCode), Sql.Arg(reason), JsonSerializer.Serialize(missingDeps), stdout, stderr);

    /// <summary>Records a run's outcome and its event, deferred to the commit and fenced like <see cref="Complete"/>.</summary>
    public static void RecordOutcome(StoreTransaction tx, IEventLog events, JobRunRow run, JobOutcome outcome, long now)
    {
        Complete(tx, run, outcome.Status, now, outcome.Pid, outcome.ExitCode, outcome.Reason, outcome.MissingDeps, outcome.Stdout, outcome.Stderr);
        var refs = run.Partitions.Select(p => new Protos.PartitionRef { Str = p }).ToList();
        var duration = (ulong)Math.Max(0, now - (run.StartedAt ?? now));
        var e = outcome.Status switch
        {
            JobRunStatus.Succeeded => new Protos.DataBuildEvent { JobRunSucceeded = new Protos.JobRunSucceededEventV1
                { JobRunId = run.JobRunId, JobLabel = run.JobLabel, DurationMs = duration, Partitions = { refs } } },
            JobRunStatus.MissingDeps => new Protos.DataBuildEvent { JobRunMissingDeps = new Protos.JobRunMissingDepsEventV1
                { JobRunId = run.JobRunId, JobLabel = run.JobLabel, Partitions = { refs }, MissingDeps = { outcome.MissingDeps.Select(m => new Protos.PartitionRef { Str = m }) } } },
            _ => new Protos.DataBuildEvent { JobRunFailed = new Protos.JobRunFailedEventV1
                { JobRunId = run.JobRunId, JobLabel = run.JobLabel, Partitions = { refs }, Reason = outcome.Reason ?? "", DurationMs = duration, WillRetry = false } },
        };
        if (outcome.ExitCode is { } code && e.JobRunFailed is { } failed) failed.ExitCode = code;
        events.AppendDeferred(tx, [e]);
    }

    /// <summary>The run as it reads once <see cref="RecordOutcome"/> has committed.</summary>
    public static JobRunRow Finished(JobRunRow run, JobOutcome outcome, long now) => run with
    {
        Status = outcome.Status, FinishedAt = now, LeaseOwner = null, ExitCode = outcome.ExitCode, Reason = outcome.Reason,
        MissingDeps = outcome.MissingDeps, Version = run.Version + 1,
    };

    public async Task<JobRunRow?> GetAsync(string runId, CancellationToken ct)
    {
        await using var connection = await store.OpenConnectionAsync(ct);
        await using var command = Sql.Command(connection, null, $"SELECT {Columns} FROM job_runs WHERE job_run_id = $1", runId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    public static JobRunRow Read(DbDataReader r)
    {
        long? L(int i) => r.IsDBNull(i) ? null : r.GetInt64(i);
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        return new JobRunRow(r.GetString(0), r.GetString(1), r.GetString(2), JsonSerializer.Deserialize<List<string>>(r.GetString(3))!,
            Convert.ToInt32(r.GetValue(4)), L(5), r.GetInt64(6), r.GetInt64(7), L(8), L(9), r.GetInt64(10), S(11),
            r.IsDBNull(12) ? null : Convert.ToInt32(r.GetValue(12)), S(13), S(14) is { } m ? JsonSerializer.Deserialize<List<string>>(m)! : []);
    }
}

/// <summary>A run's claim was superseded (its lease ran out and another silo took it) before this outcome could be recorded.</summary>
public sealed class StaleJobRunClaimException(string runId) : Exception($"Job run {runId} was claimed again before its outcome was recorded.");

/// <summary>An optimistic hand-off was refused at the commit: the job had no room, something of it waited, or another claim held its lock.</summary>
public sealed class HandOffRefusedException(string jobLabel)
    : DataBuild.Runtime.Hosting.TurnRefusedException($"Job {jobLabel} could not start a run at once; the run is queued instead.");
