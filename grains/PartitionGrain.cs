using System.Security.Cryptography;
using System.Text;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Grains.Jobs;
using DataBuild.Protos;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using static DataBuild.Grains.GrainMessages;

namespace DataBuild.Grains;

/// <summary>
/// A partition's canonical state and the wants waiting on it: many wants for one partition share one build.
/// The first want dispatches the partition's job at once (no planning): the run is queued in the same turn
/// as the move to building. A run that reports missing dependencies turns them into child wants and waits,
/// event-driven, until each is available; a failed run is retried with backoff up to the job's retries.
/// When the partition becomes available, every waiting want and dependent partition is told in that turn.
/// </summary>
[GrainType(TypeName)]
public sealed class PartitionGrain(PartitionOwners owners, JobRunQueue queue, IDataStore store, JobDispatcher dispatcher)
    : Grain<PartitionState>, IPartitionGrain, IJobRunTarget, IRemindable
{
    public const string TypeName = "partition";

    private long Now => Clock.GetUtcNow().ToUnixTimeMilliseconds();
    private JobConfig? _job;
    private bool _jobResolved;

    /// <summary>The job that builds this partition, if any. The key and the graph never change, so this is resolved once.</summary>
    private JobConfig? Job
    {
        get
        {
            if (_jobResolved) return _job;
            _job = owners.Resolve(GrainKey).Owner is { Kind: OwnerKind.Job } o ? owners.Graph.Jobs.First(j => j.Label == o.Name) : null;
            _jobResolved = true;
            return _job;
        }
    }

    public async Task<PartitionView> MarkAvailable(string sourceType, string sourceName)
    {
        Init();
        if (State.Status != PartitionStatusNames.Available)
            await BecomeAvailableAsync($"marked available by {sourceType}{(sourceName.Length > 0 ? $" ({sourceName})" : "")}", null);
        return View();
    }

    public Task<PartitionView> Get()
    {
        Init();
        return Task.FromResult(View());
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        Init();
        if (reminderName.StartsWith(WantWaiting, StringComparison.Ordinal)) await WantArrivedAsync(ParseWantWaiting(reminderName));
        else if (reminderName.StartsWith(WantGone, StringComparison.Ordinal)) await WantGoneAsync(reminderName[WantGone.Length..]);
        else if (reminderName.StartsWith(RunDone, StringComparison.Ordinal)) await RunDoneAsync(reminderName[RunDone.Length..]);
        else if (reminderName == Retry) await RetryAsync();
        else if (reminderName.StartsWith(Dependent, StringComparison.Ordinal)) await DependentAsync(reminderName[Dependent.Length..]);
        else if (reminderName.StartsWith(UpstreamAvailable, StringComparison.Ordinal)) await UpstreamAvailableAsync(reminderName[UpstreamAvailable.Length..]);
        else if (reminderName.StartsWith(UpstreamFailed, StringComparison.Ordinal)) await UpstreamFailedAsync(reminderName[UpstreamFailed.Length..]);
    }

    private async Task WantArrivedAsync((string WantId, Waiter? Terms) message)
    {
        var wantId = message.WantId;
        if (State.Status == PartitionStatusNames.Available)
        {
            await Tell(wantId, PartitionAvailable);
            await SaveAsync();
            return;
        }
        if (State.Waiters.ContainsKey(wantId)) return;
        // The message carries the want's terms. It cannot arrive after the want ended: the want's "gone" withdraws
        // its undelivered "waiting", and a delivery it withdrew mid-turn cannot commit (its claim is gone).
        var terms = message.Terms;
        if (terms is null)
        {
            // A message sent before they were carried. A direct call is safe: wants never call partitions.
            if (await GrainFactory.GetGrain<IWantGrain>(wantId).Get() is not { } want || WantStatus.IsTerminal(want.Status)) return;
            terms = new Waiter(want.DataTimestamp, want.TtlSeconds, want.SlaSeconds, want.RootWantId);
        }
        State.Waiters[wantId] = terms;
        if (State.Status is PartitionStatusNames.Missing or PartitionStatusNames.Failed && Job is not null)
        {
            State.Failures = 0;
            await DispatchAsync($"wanted by {wantId}");
        }
        else if (State.Status == PartitionStatusNames.Building) await Tell(wantId, PartitionBuilding);
        else if (State.Status == PartitionStatusNames.UpstreamWaiting) await Tell(wantId, PartitionUpstream);
        await SaveAsync();
    }

    private async Task WantGoneAsync(string wantId)
    {
        if (!State.Waiters.Remove(wantId)) return;
        if (State.Waiters.Count == 0 && State.Status == PartitionStatusNames.Building && State.JobRunId is { } runId)
        {
            // No remaining want needs the run. A queued one is withdrawn (and cancelled if it is left empty);
            // one already claimed is left to finish, and this partition keeps waiting for its outcome.
            var partition = GrainKey;
            var label = Job!.Label;
            var now = Now;
            var state = State;
            var wantIds = State.Waiters.Keys.ToList();
            EnlistWrite(async (tx, ct) =>
            {
                var left = await queue.WithdrawAsync(tx, runId, partition, $"no want needs {partition} any more", now, ct);
                if (left is null) return;
                state.Status = PartitionStatusNames.Missing;
                state.Reason = "no want needs it any more";
                state.JobRunId = null;
                state.UpdatedAt = now;
                var events = new List<DataBuildEvent>
                {
                    new() { PartitionStatusChanged = new PartitionStatusChangedEventV1 { Partition = new PartitionRef { Str = partition },
                        PreviousStatus = PartitionStatus.Building, Status = PartitionStatus.Missing, JobRunId = runId, Reason = state.Reason } },
                };
                if (left == JobRunStatus.Cancelled)
                    events.Add(new DataBuildEvent { JobRunCancelled = new JobRunCancelledEventV1
                        { JobRunId = runId, JobLabel = label, Reason = "no remaining want needs it", Partitions = { new PartitionRef { Str = partition } } } });
                store.Events.AppendDeferred(tx, events);
            });
        }
        await SaveAsync();
    }

    private async Task DispatchAsync(string why)
    {
        var job = Job!;
        var waiters = State.Waiters.Values.ToList();
        var sla = waiters.Select(w => w.SlaDeadline).Where(d => d is not null).Min();
        var dataTimestamp = waiters.Count > 0 ? waiters.Min(w => w.DataTimestamp) : Now;
        var partition = GrainKey;
        var now = Now;
        var state = State;
        var previous = StatusOf(State.Status);
        var wantIds = State.Waiters.Keys.Order(StringComparer.Ordinal).ToList();
        var attempt = (uint)State.Failures + 1;
        State.Status = PartitionStatusNames.Building;
        State.Reason = why;
        State.UpdatedAt = now;
        State.JobRunId = null;
        // The run is queued in this turn's transaction; with batching the queue decides which run it is. With a
        // free slot here it may be claimed in the same transaction and started the moment the turn's writes have held.
        // After a refused hand-off the turn runs again and queues the run; the dispatcher then stops trying hand-offs
        // of this job for a moment, so a backlog is not refused once per partition.
        if (IsRetryAfterRefusal) dispatcher.HandOffRefused(job.Label);
        var handOff = !IsRetryAfterRefusal;
        EnlistWrite(async (tx, ct) =>
        {
            var slot = handOff ? dispatcher.TryReserveSlot(job.Label) : null;
            if (slot is not null) tx.OnAbandoned(slot.Release);
            var queued = await queue.EnqueueAsync(tx, job, partition, sla, dataTimestamp, now, ct, slot is null ? null : dispatcher.ClaimOnQueue);
            state.JobRunId = queued.RunId;
            var events = new List<DataBuildEvent>
            {
                new() { JobRunQueued = new JobRunQueuedEventV1
                    { JobRunId = queued.RunId, JobLabel = job.Label, Attempt = attempt, Partitions = { new PartitionRef { Str = partition } }, WantIds = { wantIds } } },
                new() { PartitionStatusChanged = new PartitionStatusChangedEventV1
                    { Partition = new PartitionRef { Str = partition }, PreviousStatus = previous, Status = PartitionStatus.Building, JobRunId = queued.RunId, Reason = why, WantIds = { wantIds } } },
            };
            if (queued.Claimed is { } run)
            {
                events.Add(JobRunQueue.StartedEvent(run, run.LeaseOwner!));
                // The process starts as soon as the turn's writes have held on the server, while their commit is flushed.
                tx.OnWritesChecked(() => slot!.Start(job, run));
                tx.OnCommitted(slot!.Committed);
            }
            else
            {
                slot?.Release();
                tx.OnCommitted(store.PublishJobsQueued);
            }
            store.Events.AppendDeferred(tx, events);
        });
        foreach (var want in State.Waiters.Keys) await Tell(want, PartitionBuilding);
    }

    public async Task RecordRunOutcome(JobRunRow run, JobOutcome outcome, long finishedAt)
    {
        Init();
        EnlistWrite(tx => JobRunQueue.RecordOutcome(tx, store.Events, run, outcome, finishedAt));
        if (State.JobRunId != run.JobRunId) return; // not the run this partition waits on (withdrawn, or superseded)
        await RunFinishedAsync(JobRunQueue.Finished(run, outcome, finishedAt));
    }

    private async Task RunDoneAsync(string runId)
    {
        if (State.JobRunId != runId) return; // not the run this partition waits on (withdrawn, or superseded)
        var run = await queue.GetAsync(runId, CancellationToken.None);
        if (run is null) return;
        await RunFinishedAsync(run);
    }

    private async Task RunFinishedAsync(JobRunRow run)
    {
        State.JobRunId = null;
        switch (run.Status)
        {
            case JobRunStatus.Succeeded:
                await BecomeAvailableAsync($"built by job run {run.JobRunId}", run.JobRunId);
                return;
            case JobRunStatus.MissingDeps:
                await UpstreamWaitingAsync(run);
                break;
            case JobRunStatus.Failed:
                await FailedAsync(run);
                break;
        }
        await SaveAsync();
    }

    private async Task UpstreamWaitingAsync(JobRunRow run)
    {
        State.Missing = [.. run.MissingDeps];
        await ChangeStatusAsync(PartitionStatusNames.UpstreamWaiting, run.Reason, run.JobRunId, run.MissingDeps);
        foreach (var want in State.Waiters.Keys) await Tell(want, PartitionUpstream);
        // The wants this partition serves are the parents of the missing partitions' wants.
        var parentId = State.Waiters.OrderBy(w => w.Value.SlaDeadline ?? long.MaxValue).ThenBy(w => w.Key, StringComparer.Ordinal).Select(w => w.Key).FirstOrDefault();
        var parent = parentId is null ? null : State.Waiters[parentId];
        foreach (var missing in run.MissingDeps)
        {
            if (parent is not null && owners.Resolve(missing).Owner is not null)
            {
                var childId = ChildWantId(parentId!, missing);
                // Activated without a read: a child want is nearly always new. One that exists (this turn ran before
                // and failed after creating it) fails its first commit's version check and is read and asked again.
                await GrainFactory.GetNewGrain<IWantGrain>(childId).Create(new CreateWant(childId, [missing], parent.DataTimestamp, parent.TtlSeconds,
                    parent.SlaSeconds, "job", run.JobLabel, $"missing dependency of {GrainKey} (job run {run.JobRunId})", parentId, parent.RootWantId));
            }
            await TellPartition(missing, Dependent);
        }
    }

    private async Task FailedAsync(JobRunRow run)
    {
        var job = Job!;
        State.Failures++;
        if (State.Failures <= job.Retries && State.Waiters.Count > 0)
        {
            var backoff = TimeSpan.FromSeconds(Math.Min(300, Math.Pow(2, State.Failures - 1)));
            await RegisterOrUpdateReminder(Retry, Clock.GetUtcNow() + backoff, TimeSpan.Zero);
            State.Reason = $"attempt {State.Failures} of {job.Retries + 1} failed ({run.Reason}); retrying in {backoff.TotalSeconds:0} s";
            State.UpdatedAt = Now;
            return;
        }
        await FailAsync($"job '{job.Label}' failed {State.Failures} time{(State.Failures == 1 ? "" : "s")}; last: {run.Reason}", run.JobRunId);
    }

    /// <summary>Fails for good: waiting wants are told, and so are partitions waiting on this one as a dependency.</summary>
    private async Task FailAsync(string reason, string? runId)
    {
        await ChangeStatusAsync(PartitionStatusNames.Failed, reason, runId);
        foreach (var want in State.Waiters.Keys) await Tell(want, PartitionFailed);
        foreach (var downstream in State.Dependents) await TellPartition(downstream, UpstreamFailed);
        State.Waiters.Clear();
        State.Dependents.Clear();
    }

    private async Task UpstreamFailedAsync(string upstream)
    {
        if (State.Status != PartitionStatusNames.UpstreamWaiting || !State.Missing.Contains(upstream)) return;
        await FailAsync($"upstream partition {upstream} failed", null);
        await SaveAsync();
    }

    private async Task RetryAsync()
    {
        if (State.Status != PartitionStatusNames.Building || State.JobRunId is not null) return;
        // Every want may have left while the retry waited: then there is nothing to build for.
        if (State.Waiters.Count > 0) await DispatchAsync($"retry {State.Failures} of {Job!.Retries}");
        else await ChangeStatusAsync(PartitionStatusNames.Missing, "no want needs it any more", null);
        await SaveAsync();
    }

    private async Task DependentAsync(string downstream)
    {
        if (State.Status == PartitionStatusNames.Available)
            await TellPartition(downstream, UpstreamAvailable);
        else if (!State.Dependents.Add(downstream)) return;
        await SaveAsync();
    }

    private async Task UpstreamAvailableAsync(string upstream)
    {
        if (!State.Missing.Remove(upstream)) return;
        // Event-driven retry: the moment the last missing dependency is available, dispatch again.
        if (State.Missing.Count == 0 && State.Status == PartitionStatusNames.UpstreamWaiting && Job is not null)
        {
            if (State.Waiters.Count > 0) await DispatchAsync($"upstream {upstream} available");
            else await ChangeStatusAsync(PartitionStatusNames.Missing, "dependencies available, but no want waits any more", null);
        }
        await SaveAsync();
    }

    private async Task BecomeAvailableAsync(string reason, string? runId)
    {
        // A partition no job builds has quiet waiters too (QuietWaits): those found now are told, and named, with the rest.
        var waiting = State.Waiters.Keys.ToList();
        if (Job is null) waiting = [.. waiting.Union(await QuietWaits.ReadAsync(store, GrainKey), StringComparer.Ordinal)];
        State.AvailableAt = Now;
        State.Failures = 0;
        State.Missing.Clear();
        await ChangeStatusAsync(PartitionStatusNames.Available, reason, runId, wantIds: waiting);
        // Dependents first: their messages are delivered in this order after the commit, and a dependent's turn
        // starts a job (the dispatch latency users wait on); the wants only change status.
        foreach (var downstream in State.Dependents) await TellPartition(downstream, UpstreamAvailable);
        foreach (var want in waiting) await Tell(want, PartitionAvailable);
        // Wants that began to wait quietly after the read above are found in the commit, behind the partition's lock. A
        // partition a job builds has none, unless a redeploy moved it from an external pattern to the job's: they are
        // told too (not named in the event), at the cost of one statement in the commit and no round trip.
        var (partition, sentAt) = (GrainKey, NextWordAt());
        EnlistWrite(tx => QuietWaits.TellQuietWaiters(tx, store, partition, PartitionAvailable + partition, sentAt, waiting));
        State.Waiters.Clear();
        State.Dependents.Clear();
        await SaveAsync();
    }

    private Task ChangeStatusAsync(string status, string? reason, string? runId, IReadOnlyList<string>? missing = null,
        IEnumerable<string>? wantIds = null)
    {
        var changed = new PartitionStatusChangedEventV1
        {
            Partition = new PartitionRef { Str = GrainKey }, PreviousStatus = StatusOf(State.Status), Status = StatusOf(status),
            WantIds = { (wantIds ?? State.Waiters.Keys).Order(StringComparer.Ordinal) },
        };
        if (reason is not null) changed.Reason = reason;
        if (runId is not null) changed.JobRunId = runId;
        if (missing is not null) changed.MissingDeps.AddRange(missing.Select(m => new PartitionRef { Str = m }));
        AppendEvent(new DataBuildEvent { PartitionStatusChanged = changed });
        State.Status = status;
        State.Reason = reason;
        State.UpdatedAt = Now;
        return Task.CompletedTask;
    }

    private Task TellPartition(string partition, string message) =>
        RegisterOrUpdateReminderFor(new GrainId(TypeName, partition), message + GrainKey, Clock.GetUtcNow(), TimeSpan.Zero);

    /// <summary>
    /// A want hears of its partition after this turn's commit, not in it: nothing is dispatched on what a want hears,
    /// and its turn in this commit would make the commit, and the job it may start, later.
    /// </summary>
    private Task Tell(string wantId, string message) =>
        RegisterOrUpdateReminderFor(IdOf<IWantGrain>(wantId), message + GrainKey, DateTimeOffset.FromUnixTimeMilliseconds(NextWordAt()),
            TimeSpan.Zero, inSendersCommit: false);

    /// <summary>
    /// The send time of this partition's next word to a want, which orders its words there (they are delivered
    /// concurrently): never earlier than the last word's, even from a silo whose clock is behind the one that sent it.
    /// </summary>
    private long NextWordAt() => State.LastWordAt = Math.Max(Now, State.LastWordAt);

    /// <summary>The same parent and missing partition always give the same child want, so a retried turn cannot duplicate it.</summary>
    public static string ChildWantId(string parentWantId, string missingRef)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"child-want|{parentWantId}|{missingRef}"));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50); // version 5 (name-based)
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80); // RFC 4122 variant
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }

    private void Init()
    {
        if (State.Ref is not null) return;
        State.Ref = GrainKey;
        State.Status = PartitionStatusNames.Missing;
        State.UpdatedAt = Now;
    }

    private async Task SaveAsync()
    {
        var state = State;
        EnlistWrite(tx =>
        {
            // Decided as the turn's writes go out, from the state they write: a turn that leaves the row as it was
            // (a dependent noted, a want's terms kept) writes only the grain state.
            var row = ViewOf(state);
            if (_committedRow is { } committed && ReferenceEquals(committed.State, state) && committed.Row == row) return;
            ReadModels.UpsertPartition(tx, state);
            tx.OnCommitted(() => _committedRow = (state, row));
        });
        await WriteStateAsync();
    }

    // The read-model row as this activation last committed it, with the state object it was written from: a state read
    // again from the store (another silo's turn, a turn that failed) is another object, whose row is not known here.
    private (PartitionState State, PartitionView Row)? _committedRow;

    private PartitionView View() => ViewOf(State);

    private PartitionView ViewOf(PartitionState s) => new(GrainKey, s.Status, s.UpdatedAt, s.AvailableAt, s.JobRunId, s.Reason, s.Waiters.Count);

    internal static PartitionStatus StatusOf(string status) => status switch
    {
        PartitionStatusNames.Missing => PartitionStatus.Missing,
        PartitionStatusNames.Building => PartitionStatus.Building,
        PartitionStatusNames.UpstreamWaiting => PartitionStatus.UpstreamWaiting,
        PartitionStatusNames.Available => PartitionStatus.Available,
        PartitionStatusNames.Failed => PartitionStatus.Failed,
        _ => PartitionStatus.Unspecified,
    };
}
