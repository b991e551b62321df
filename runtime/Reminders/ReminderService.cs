using System.Collections.Concurrent;
using DataBuild.Runtime.EventLog;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Runtime.Telemetry;

namespace DataBuild.Runtime.Reminders;

/// <summary>
/// Claims due reminders for this silo and delivers them to <see cref="IRemindable.ReceiveReminder"/> as
/// grain turns. Sleeps until the next due time or a change notification, never in a tight poll.
/// Delivery is at least once; a delivery's effects commit at most once per tick, because completing the
/// reminder is part of the delivering turn's transaction and is fenced by the claim's version.
/// <para>
/// A message (a one-shot reminder due now) written on this silo while a delivery slot is free is written
/// already leased to this silo and delivered straight after its commit: no claim round trip, no wait for the
/// loop. The row is still the durable record: if this silo dies first, the lease runs out and any silo claims it.
/// </para>
/// </summary>
internal sealed class ReminderService(GrainRuntime runtime, SiloHostOptions options, string siloId)
{
    private const int ClaimBatch = 100;
    private readonly SemaphoreSlim _slots = new(options.MaxConcurrentReminderDeliveries, options.MaxConcurrentReminderDeliveries);
    private readonly ConcurrentDictionary<Task, bool> _deliveries = new();
    private readonly ChangeSignal _slotFreed = new();
    private volatile bool _closed;
    // When the loop will next look for due reminders by itself (epoch ms); long.MinValue while it is looking.
    private long _plannedWake = long.MinValue;
    // Set while the loop waits for a free slot: only then does a finished delivery need to wake it.
    private volatile bool _waitingForSlot;

    /// <summary>Test seam: runs after the loop has read the next claimable instant and before it plans its sleep.</summary>
    internal Func<Task>? AfterNextDueRead { get; set; }

    private TimeProvider Clock => runtime.Clock;
    private ReminderTable Table => runtime.Store.Reminders;

    public async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                Volatile.Write(ref _plannedWake, long.MinValue); // awake: a reminder committed now is seen by the reads below
                var changed = runtime.Store.RemindersChanged.Next;
                var slotFreed = _slotFreed.Next;
                _waitingForSlot = true; // before the count: a slot freed after it pulses
                var free = _slots.CurrentCount;
                if (free > 0) _waitingForSlot = false;
                if (free > 0)
                {
                    var want = Math.Min(free, ClaimBatch);
                    var claimAt = Clock.GetUtcNow().ToUnixTimeMilliseconds();
                    var claimed = await Table.ClaimDueAsync(siloId, claimAt, (long)options.ReminderLease.TotalMilliseconds, want, stopping);
                    foreach (var claim in claimed) Start(claim);
                    if (claimed.Count == want) continue; // more may be due
                }
                // From here on, a reminder committed due before the safety net wakes this loop: the read below may
                // have begun before its commit. (Left "awake", such a reminder told no one, and waited for the safety net.)
                var latestWake = Clock.GetUtcNow() + options.ReminderSafetyNet;
                Volatile.Write(ref _plannedWake, latestWake.ToUnixTimeMilliseconds());
                var next = await Table.NextClaimableAtAsync(stopping);
                if (AfterNextDueRead is { } pause) await pause();
                var now = Clock.GetUtcNow();
                if (next is { } at && DateTimeOffset.FromUnixTimeMilliseconds(at) <= now)
                {
                    // Claimable already: it fell due since the claim, or another silo's claim holds it locked, or
                    // our slots are full. Pause briefly in real time (a spin guard, not a schedule) and look again.
                    Volatile.Write(ref _plannedWake, long.MinValue);
                    await Task.WhenAny(changed, slotFreed, Task.Delay(free > 0 ? TimeSpan.FromMilliseconds(20) : TimeSpan.FromSeconds(1), stopping));
                    continue;
                }
                var wakeAt = latestWake;
                if (next is { } nextAt && DateTimeOffset.FromUnixTimeMilliseconds(nextAt) < wakeAt) wakeAt = DateTimeOffset.FromUnixTimeMilliseconds(nextAt);
                Volatile.Write(ref _plannedWake, wakeAt.ToUnixTimeMilliseconds());
                var sleep = Task.Delay(wakeAt - now, Clock, stopping);
                // The clock may have passed the wake-up instant before the timer was armed: then do not sleep.
                if (Clock.GetUtcNow() >= wakeAt) continue;
                await Task.WhenAny(changed, slotFreed, sleep);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
            catch (Exception e)
            {
                runtime.Log.LogReminderLoopFailed(e);
                // A pause in real time before looking again (a spin guard, not a schedule): on the silo's clock, a
                // clock that stood still (a test's) would never end it, and no reminder would fire again.
                try { await Task.Delay(TimeSpan.FromSeconds(1), stopping); }
                catch (OperationCanceledException) { }
            }
        }
    }

    private void Start(ReminderRow claim)
    {
        _slots.Wait();
        StartReserved(claim);
    }

    /// <summary>
    /// Writes a reminder with <paramref name="transaction"/>. A message due now goes out leased to this silo and
    /// is delivered here once the transaction commits, when a slot is free. Any other reminder is left for the
    /// reminder loops to claim; after the commit they are told only if it falls due before this silo's loop would
    /// look again anyway (a reminder due later needs no wake-up: the loop that sleeps until then claims it).
    /// A message due now may be delivered in its sender's commit (<see cref="TryStartJoined"/>) unless
    /// <paramref name="inSendersCommit"/> is false; <paramref name="targetLikelyNew"/>: that turn activates the grain without
    /// reading its state (see <see cref="Hosting.Grain.RegisterOrUpdateReminderFor"/>).
    /// </summary>
    public void Schedule(StoreTransaction transaction, GrainId grain, string name, long dueAt, long periodMs, bool inSendersCommit = true,
        bool targetLikelyNew = false)
    {
        var now = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (periodMs != 0 || dueAt > now || _closed || !_slots.Wait(0))
        {
            ReminderTable.Upsert(transaction, grain, name, dueAt, periodMs);
            transaction.OnCommitted(() =>
            {
                if (dueAt < Volatile.Read(ref _plannedWake)) runtime.Store.PublishRemindersChanged();
            });
            return;
        }
        var leaseUntil = now + (long)options.ReminderLease.TotalMilliseconds;
        var claim = ReminderTable.UpsertLeased(transaction, grain, name, dueAt, siloId, leaseUntil, Random.Shared.NextInt64(1L << 40, 1L << 62));
        var joined = false;
        if (inSendersCommit) transaction.OnCommittedOrJoined(() => StartReserved(claim), join => joined = TryStartJoined(claim, join, targetLikelyNew));
        else transaction.OnCommitted(() => StartReserved(claim));
        transaction.OnAbandoned(() =>
        {
            if (!joined) ReleaseSlot(); // a joined delivery holds the slot until it ends
        });
    }

    /// <summary>
    /// Starts the message's turn now, ahead of its sender's commit, to commit in the sender's group
    /// (<see cref="CommitJoin"/>): when the grain is active here and idle, or not active here at all (it is activated
    /// first: one read of its own state while the sender's batch waits, or none with <paramref name="assumeNew"/>), so
    /// that the sender never waits for another turn.
    /// </summary>
    private bool TryStartJoined(ReminderRow claim, CommitJoin join, bool assumeNew)
    {
        if (_closed || !runtime.Catalog.IsIdleOrAbsent(claim.Grain)) return false;
        var turn = join.Expect();
        Track(() => DeliverJoinedAsync(claim, turn, assumeNew));
        return true;
    }

    private async Task DeliverJoinedAsync(ReminderRow claim, JoinedTurn turn, bool assumeNew)
    {
        JoinedTurn.Current = turn;
        try
        {
            await ReceiveAsync(new ReminderDelivery(claim, null, turn), assumeNew);
            DataBuildMetrics.ReminderDelivery("joined");
            return;
        }
        catch (Exception) when (!runtime.Killed.IsCancellationRequested)
        {
            // Declined (it needed to read), or it failed with or without its sender: nothing of the turn was written.
        }
        catch (Exception)
        {
            return; // killed: the lease runs out and another silo delivers
        }
        finally
        {
            turn.Withdraw(); // if it never reached its commit, the sender need not wait for it
            turn.Decided();
            JoinedTurn.Current = null;
        }
        // The message is as the sender committed it, leased to this silo: deliver it as any other.
        if (await turn.Join.SenderCommitted) await DeliverAsync(claim);
    }

    /// <summary>A killed silo takes no more messages for local delivery.</summary>
    public void Close() => _closed = true;

    private void StartReserved(ReminderRow claim)
    {
        if (_closed)
        {
            // Stopping: the lease is handed back when the silo leaves (or runs out), and another silo delivers.
            ReleaseSlot();
            return;
        }
        Track(() => DeliverAsync(claim));
    }

    /// <summary>Runs a delivery that holds a slot, tracked until it ends, and then frees the slot.</summary>
    private void Track(Func<Task> deliver)
    {
        Task task;
        // Not on the committing turn's execution context: the delivery is a new call chain, not a nested call. In the
        // thread pool's global queue, first in first out: a turn's messages start in the order it wrote them (a worker
        // takes its own queue's newest item first).
        using (ExecutionContext.SuppressFlow())
            task = Task.Factory.StartNew(deliver, CancellationToken.None,
                TaskCreationOptions.PreferFairness | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default).Unwrap();
        _deliveries[task] = true;
        task.ContinueWith(t =>
        {
            _deliveries.TryRemove(t, out _);
            ReleaseSlot();
        }, TaskScheduler.Default);
    }

    private void ReleaseSlot()
    {
        _slots.Release();
        if (_waitingForSlot)
        {
            _waitingForSlot = false;
            _slotFreed.Pulse();
        }
    }

    /// <summary>Stops taking messages for local delivery and waits for deliveries in flight (a graceful stop lets them finish).</summary>
    public async Task DrainAsync()
    {
        _closed = true;
        while (!_deliveries.IsEmpty) await Task.WhenAll(_deliveries.Keys);
    }

    private async Task DeliverAsync(ReminderRow claim)
    {
        var now = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        long? next = claim.PeriodMs == 0 ? null : NextTick(claim.DueAt, claim.PeriodMs, now);
        try
        {
            await ReceiveAsync(new ReminderDelivery(claim, next));
            DataBuildMetrics.ReminderDelivery("delivered");
        }
        catch (StaleReminderClaimException)
        {
            DataBuildMetrics.ReminderDelivery("stale");
            runtime.Log.LogReminderStale(claim.Name, claim.Grain);
        }
        catch (Exception) when (runtime.Killed.IsCancellationRequested)
        {
            // killed: the lease runs out and another silo delivers
        }
        catch (Exception e)
        {
            DataBuildMetrics.ReminderDelivery("failed");
            var retryAt = Clock.GetUtcNow() + Backoff(claim.Attempt);
            runtime.Log.LogReminderFailed(e, claim.Name, claim.Grain, claim.Attempt + 1, retryAt);
            try { await Table.RetryLaterAsync(claim, retryAt.ToUnixTimeMilliseconds()); }
            catch (Exception) { /* the lease will run out and the reminder be claimed again */ }
            runtime.Store.RemindersChanged.Pulse();
        }
    }

    /// <summary>The delivery's turn: the grain's <see cref="IRemindable.ReceiveReminder"/>, committed with the claim's completion.</summary>
    private Task<bool> ReceiveAsync(ReminderDelivery delivery, bool assumeNew = false)
    {
        var claim = delivery.Claim;
        var status = new TickStatus(
            DateTimeOffset.FromUnixTimeMilliseconds(claim.FirstDue),
            TimeSpan.FromMilliseconds(claim.PeriodMs),
            DateTimeOffset.FromUnixTimeMilliseconds(claim.DueAt));
        return runtime.InvokeAsync(claim.Grain, async grain =>
        {
            if (grain is not IRemindable remindable)
                throw new InvalidOperationException($"Grain {claim.Grain} received reminder '{claim.Name}' but does not implement IRemindable.");
            await remindable.ReceiveReminder(claim.Name, status);
            return true;
        }, delivery, assumeNew);
    }

    /// <summary>1 s, 2 s, 4 s … up to a minute between attempts.</summary>
    public static TimeSpan Backoff(int attempt) => TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, Math.Min(attempt, 6))));

    /// <summary>The first tick after <paramref name="now"/>: ticks missed while the cluster was down are not replayed one by one.</summary>
    public static long NextTick(long dueAt, long periodMs, long now) =>
        dueAt + ((Math.Max(0, now - dueAt) / periodMs) + 1) * periodMs;
}
