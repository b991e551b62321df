using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Runtime.EventLog;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Runtime.Telemetry;
using Microsoft.Extensions.Logging;

namespace DataBuild.Grains.Jobs;

public sealed record JobDispatcherOptions
{
    /// <summary>Job processes this silo runs at once, across all jobs.</summary>
    public int Slots { get; init; } = Math.Max(2, Environment.ProcessorCount * 2);
    /// <summary>How long a claimed run is this silo's without a heartbeat; heartbeats come every third of it.</summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The longest the dispatcher sleeps without a wake-up: bounds a lost NOTIFY and a dead silo's lease.</summary>
    public TimeSpan SafetyNet { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// Claims queued job runs for this silo (woken the moment a run is queued, in-process or by NOTIFY), runs
/// them, heartbeats their leases, and records each outcome with its event: for a run of one partition, in that
/// partition's turn (one commit for the outcome and the partition's reaction); otherwise, or when that turn
/// fails, in a transaction of its own with a message to every partition of the run.
/// </summary>
public sealed class JobDispatcher(IDataStore store, GraphConfig graph, JobRunQueue queue, JobDispatcherOptions options, SiloHost silo,
    TimeProvider clock, ILogger<JobDispatcher> log)
{
    private readonly ConcurrentDictionary<string, Task> _running = new();
    private readonly string _siloId = silo.SiloId;
    private readonly ChangeSignal _slotFreed = new();

    private int _reserved;
    private ulong _claimPasses; // the claim loop's only: which job a pass offers slots to first
    private volatile StrongBox<CancellationToken>? _stopping; // set once dispatching starts (a box: read across threads)

    public int Running => _running.Count;

    /// <summary>Slots neither running a job nor held for a run being handed off.</summary>
    private int FreeSlots => options.Slots - _running.Count - Volatile.Read(ref _reserved);

    /// <summary>
    /// Holds a slot for a run a partition's turn may claim as it queues it (<see cref="ClaimOnQueue"/>); null when
    /// every slot is busy. The slot is used by <see cref="JobSlot.Start"/> after the turn commits, or given back.
    /// </summary>
    public JobSlot? TryReserveSlot(string jobLabel)
    {
        if (_stopping?.Value is not { IsCancellationRequested: false } stopping) return null; // not dispatching (yet, or any more)
        if (_refusedAt.TryGetValue(jobLabel, out var refusedAt) && Environment.TickCount64 - refusedAt < RefusalPauseMs) return null;
        if (Interlocked.Increment(ref _reserved) + _running.Count <= options.Slots) return new JobSlot(this, stopping);
        Interlocked.Decrement(ref _reserved);
        return null;
    }

    // After a hand-off of a job was refused (no room, or runs waiting), the job's next runs are queued without
    // trying for a second: under a backlog, each would be refused and run its turn twice.
    private const long RefusalPauseMs = 1_000;
    private readonly ConcurrentDictionary<string, long> _refusedAt = new(StringComparer.Ordinal);

    public void HandOffRefused(string jobLabel) => _refusedAt[jobLabel] = Environment.TickCount64;

    /// <summary>What a partition's turn passes to the queue so that a run it queues may start on this silo at once.</summary>
    public ClaimOnQueue ClaimOnQueue => new(_siloId, (long)options.Lease.TotalMilliseconds);

    /// <summary>
    /// A slot held for a hand-off. <see cref="Start"/> runs once the turn's writes have been checked on the server, which
    /// may be before its commit is durable (<see cref="StoreTransaction.OnWritesChecked"/>): the job's process starts
    /// while the WAL flush is on its way, and its outcome is recorded only once <see cref="Committed"/> confirms the run
    /// exists. <see cref="Release"/> (the turn did not commit) gives back a slot never started, and stops a run started
    /// ahead of a commit that then failed: its process is killed and nothing of it is recorded. Each is idempotent.
    /// </summary>
    public sealed class JobSlot(JobDispatcher dispatcher, CancellationToken stopping)
    {
        private readonly TaskCompletionSource<bool> _committed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _done;

        public void Start(JobConfig job, JobRunRow run)
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            // Started before the reservation is dropped, so the slot is never counted free in between. Not on the
            // committing turn's execution context: the run is not part of that grain call.
            using (ExecutionContext.SuppressFlow()) dispatcher.Start(job, run, stopping, _committed.Task); // stopping: handed back, not started
            Interlocked.Decrement(ref dispatcher._reserved);
        }

        public void Committed() => _committed.TrySetResult(true);

        public void Release()
        {
            _committed.TrySetResult(false);
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            Interlocked.Decrement(ref dispatcher._reserved);
            dispatcher._slotFreed.Pulse();
        }
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        _stopping = new StrongBox<CancellationToken>(stopping);
        // Whether a look at the queue may find a run to claim. A freed slot alone does not make it so: a run to claim
        // was queued (a wake-up, in-process or by NOTIFY), left over from the last look, or has a lease that ran out
        // (the safety net's wake-up looks for those). Most slots free with nothing queued (a run handed off as its
        // partition's turn committed, the usual case), and then the look is one query per job run for nothing.
        var mayFindRuns = true;
        while (!stopping.IsCancellationRequested)
        {
            var queued = store.JobsQueued.Next;
            var freed = _slotFreed.Next;
            try
            {
                if (FreeSlots > 0 && mayFindRuns)
                {
                    var claimable = await queue.ClaimableJobsAsync(clock.GetUtcNow().ToUnixTimeMilliseconds(), stopping);
                    await ClaimFairlyAsync(graph.Jobs.Where(j => claimable.ContainsKey(j.Label)).ToList(), claimable, stopping);
                    mayFindRuns = claimable.Count > 0; // some may be left for the next free slot
                }
                var safetyNet = Task.Delay(options.SafetyNet, stopping);
                await Task.WhenAny(queued, freed, safetyNet);
                mayFindRuns |= queued.IsCompleted || safetyNet.IsCompleted;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
            catch (Exception e)
            {
                mayFindRuns = true;
                log.LogError(e, "Claiming job runs failed; retrying");
                try { await Task.Delay(options.SafetyNet, stopping); } catch (OperationCanceledException) { }
            }
        }
    }

    /// <summary>
    /// Shares the free slots among the jobs with claimable runs, a share each. Jobs with a run under an SLA go first,
    /// earliest deadline first (within a job, runs are claimed in the same order): SLA work has strict priority. The
    /// others take turns going first, pass by pass, so that among them a job with a long backlog cannot keep another
    /// job's runs waiting until all of it has run. Slots left over go to the jobs that took their whole share.
    /// </summary>
    private async Task ClaimFairlyAsync(List<JobConfig> jobs, IReadOnlyDictionary<string, long?> earliestSla, CancellationToken stopping)
    {
        if (jobs.Count == 0) return;
        var first = (int)(_claimPasses++ % (ulong)jobs.Count);
        // A stable sort of the rotated list: jobs without an SLA run keep their turn order, after those with one.
        var order = jobs.Skip(first).Concat(jobs.Take(first)).OrderBy(j => earliestSla[j.Label] ?? long.MaxValue);
        var share = Math.Max(1, FreeSlots / jobs.Count);
        var tookShare = new List<JobConfig>();
        foreach (var job in order)
        {
            var want = Math.Min(share, FreeSlots);
            if (want <= 0) return;
            if (await ClaimAsync(job, want, stopping) == want) tookShare.Add(job);
        }
        foreach (var job in tookShare)
        {
            var free = FreeSlots;
            if (free <= 0) return;
            await ClaimAsync(job, free, stopping);
        }
    }

    private async Task<int> ClaimAsync(JobConfig job, int slots, CancellationToken stopping)
    {
        var claimed = await queue.ClaimAsync(job, _siloId, slots, clock, (long)options.Lease.TotalMilliseconds, stopping);
        foreach (var run in claimed) Start(job, run, stopping, AlreadyCommitted);
        return claimed.Count;
    }

    /// <summary>
    /// Runs in flight end before a clean stop returns: their processes are killed and the runs handed back (a killed
    /// silo abandons them to their leases).
    /// </summary>
    public async Task DrainAsync()
    {
        while (true)
        {
            var freed = _slotFreed.Next; // pulsed after each run's entry is removed
            if (_running.IsEmpty) return;
            await Task.WhenAll(_running.Values);
            await freed;
        }
    }

    private static readonly Task<bool> AlreadyCommitted = Task.FromResult(true);

    /// <param name="committed">Whether the transaction that claimed the run committed: a run claimed by its own
    /// transaction is started after it (true at once); a hand-off may start ahead of its turn's commit.</param>
    private void Start(JobConfig job, JobRunRow run, CancellationToken stopping, Task<bool> committed)
    {
        var task = Task.Run(() => ExecuteAsync(job, run, stopping, committed));
        _running[run.JobRunId] = task;
        task.ContinueWith(done =>
        {
            _running.TryRemove(new KeyValuePair<string, Task>(run.JobRunId, done)); // only this attempt's entry
            _slotFreed.Pulse();
        }, TaskScheduler.Default);
    }

    private async Task ExecuteAsync(JobConfig job, JobRunRow run, CancellationToken stopping, Task<bool> committed)
    {
        if (stopping.IsCancellationRequested)
        {
            if (await committed) await HandBackAsync(job, run); // claimed as the silo began to stop: not started
            return;
        }
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var stopIfUncommitted = StopIfUncommittedAsync(committed, lost);
        var heartbeat = HeartbeatAsync(run, lost);
        JobOutcome outcome;
        var started = Stopwatch.GetTimestamp();
        try
        {
            log.LogInformation("Job run {Run} ({Job}, attempt {Attempt}) starting for {Partitions}", run.JobRunId, job.Label, run.Attempt, string.Join(", ", run.Partitions));
            DataBuildMetrics.JobRunStarted(job.Label);
            outcome = await JobProcess.RunAsync(graph, job, run.JobRunId, run.Partitions, lost.Token);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            outcome = new JobOutcome(JobRunStatus.Failed, null, $"the job could not be run: {e.Message}", [], "", e.ToString(), null);
        }
        finally
        {
            await lost.CancelAsync();
            await heartbeat;
        }
        // Nothing is recorded of a run until the transaction that claimed it has committed; if it failed, the run does not exist.
        if (!await committed)
        {
            await stopIfUncommitted;
            DataBuildMetrics.JobRunUndone(job.Label);
            log.LogWarning("Job run {Run} ({Job}) was started as its hand-off's writes were checked, but their commit failed: its process was stopped ({Status}) and nothing of it is recorded; the partition's turn runs again",
                run.JobRunId, job.Label, outcome.Reason ?? outcome.Status);
            return;
        }
        if (outcome.Abandoned && stopping.IsCancellationRequested)
        {
            // Killed by this silo's stop: not the job's failure. Another silo runs it again now. (An outcome the job
            // reached by itself as the stop came is recorded as usual.)
            await HandBackAsync(job, run);
            return;
        }
        DataBuildMetrics.JobRunFinished(job.Label, outcome.Status, Stopwatch.GetElapsedTime(started));
        try
        {
            await CompleteAsync(job, run, outcome, CancellationToken.None);
        }
        catch (Exception e)
        {
            log.LogError(e, "Recording the outcome of job run {Run} failed; its lease will run out and it will run again", run.JobRunId);
        }
    }

    private static async Task StopIfUncommittedAsync(Task<bool> committed, CancellationTokenSource lost)
    {
        if (!await committed) await lost.CancelAsync(); // kills the process, if it is still running
    }

    /// <summary>
    /// A clean stop hands its runs back at once rather than leave them to their leases (a rolling deploy would hold
    /// every run it interrupts for a whole lease). If this fails, the lease runs out as after a crash.
    /// </summary>
    private async Task HandBackAsync(JobConfig job, JobRunRow run)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            if (!await queue.HandBackAsync(run, _siloId, timeout.Token)) return;
            store.PublishJobsQueued();
            DataBuildMetrics.JobRunHandedBack(job.Label);
            log.LogInformation("Job run {Run} ({Job}, attempt {Attempt}) handed back as this silo stops; another silo runs it again", run.JobRunId, job.Label, run.Attempt);
        }
        catch (Exception e)
        {
            log.LogWarning(e, "Handing back job run {Run} failed; its lease will run out and it will run again", run.JobRunId);
        }
    }

    private async Task HeartbeatAsync(JobRunRow run, CancellationTokenSource lost)
    {
        var renewedAt = clock.GetUtcNow();
        while (!lost.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.Lease / 3, lost.Token);
                var until = clock.GetUtcNow().Add(options.Lease).ToUnixTimeMilliseconds();
                if (await queue.RenewAsync(run, _siloId, until, lost.Token))
                {
                    renewedAt = clock.GetUtcNow();
                    continue;
                }
                log.LogWarning("Job run {Run} was taken over by another silo; stopping this attempt", run.JobRunId);
                await lost.CancelAsync();
            }
            catch (OperationCanceledException) when (lost.IsCancellationRequested) { }
            catch (Exception e)
            {
                // A transient failure: keep trying, but never let the process outlive a lease we could not renew,
                // or another silo would run the same job alongside it.
                log.LogWarning(e, "Heartbeat of job run {Run} failed", run.JobRunId);
                if (clock.GetUtcNow() - renewedAt >= options.Lease * 0.9) await lost.CancelAsync();
            }
        }
    }

    private async Task CompleteAsync(JobConfig job, JobRunRow run, JobOutcome outcome, CancellationToken ct)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        try
        {
            if (run.Partitions.Count == 1)
            {
                // The usual run builds one partition: the outcome commits with that partition's turn, one commit instead of
                // the outcome's and then the partition's. If that turn fails, nothing of it was written: the outcome is then
                // recorded on its own below, with a message the partition will act on.
                try
                {
                    await silo.GrainFactory.GetGrain<IJobRunTarget>(run.Partitions[0]).RecordRunOutcome(run, outcome, now);
                    LogRecorded(job, run, outcome);
                    return;
                }
                catch (Exception e) when (e is not (StaleJobRunClaimException or OperationCanceledException))
                {
                    log.LogWarning(e, "Partition {Partition} could not take the outcome of job run {Run}; recording the outcome on its own", run.Partitions[0], run.JobRunId);
                }
            }
            // Nothing here needs an answer before the commit: on PostgreSQL the outcome, its event and the message to the
            // partitions are one round trip (group-committed), fenced by the claim's version.
            await using var tx = await store.BeginTurnAsync(ct);
            JobRunQueue.RecordOutcome(tx, store.Events, run, outcome, now);
            foreach (var partition in run.Partitions)
                silo.SendMessage(tx, new GrainId(PartitionGrain.TypeName, partition), GrainMessages.RunDone + run.JobRunId);
            await tx.CommitAsync(ct);
        }
        catch (StaleJobRunClaimException)
        {
            log.LogWarning("Job run {Run} finished here but was taken over meanwhile; its outcome is not recorded twice", run.JobRunId);
            return;
        }
        LogRecorded(job, run, outcome);
    }

    private void LogRecorded(JobConfig job, JobRunRow run, JobOutcome outcome) =>
        log.LogInformation("Job run {Run} ({Job}) {Status}{Reason}", run.JobRunId, job.Label, outcome.Status, outcome.Reason is null ? "" : $": {outcome.Reason}");
}
