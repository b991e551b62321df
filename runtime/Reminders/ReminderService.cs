using DataBuild.Runtime.EventLog;
using System.Collections.Concurrent;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;

namespace DataBuild.Runtime.Reminders;

/// <summary>
/// Claims due reminders for this silo and delivers them to <see cref="IRemindable.ReceiveReminder"/> as
/// grain turns. Sleeps until the next due time or a change notification, never in a tight poll.
/// Delivery is at least once; a delivery's effects commit at most once per tick, because completing the
/// reminder is part of the delivering turn's transaction and is fenced by the claim's version.
/// </summary>
internal sealed class ReminderService(GrainRuntime runtime, SiloHostOptions options, string siloId)
{
    private const int ClaimBatch = 100;
    private readonly SemaphoreSlim _slots = new(options.MaxConcurrentReminderDeliveries, options.MaxConcurrentReminderDeliveries);
    private readonly ConcurrentDictionary<Task, bool> _deliveries = new();
    private readonly ChangeSignal _slotFreed = new();

    private TimeProvider Clock => runtime.Clock;
    private ReminderTable Table => runtime.Store.Reminders;

    public async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var changed = runtime.Store.RemindersChanged.Next;
                var slotFreed = _slotFreed.Next;
                var free = _slots.CurrentCount;
                if (free > 0)
                {
                    var want = Math.Min(free, ClaimBatch);
                    var claimAt = Clock.GetUtcNow().ToUnixTimeMilliseconds();
                    var claimed = await Table.ClaimDueAsync(siloId, claimAt, (long)options.ReminderLease.TotalMilliseconds, want, stopping);
                    foreach (var claim in claimed) Start(claim);
                    if (claimed.Count == want) continue; // more may be due
                }
                var next = await Table.NextClaimableAtAsync(stopping);
                var now = Clock.GetUtcNow();
                if (next is { } at && DateTimeOffset.FromUnixTimeMilliseconds(at) <= now)
                {
                    // Claimable already: it fell due since the claim, or another silo's claim holds it locked, or
                    // our slots are full. Pause briefly in real time (a spin guard, not a schedule) and look again.
                    await Task.WhenAny(changed, slotFreed, Task.Delay(free > 0 ? TimeSpan.FromMilliseconds(20) : TimeSpan.FromSeconds(1), stopping));
                    continue;
                }
                var wakeAt = now + options.ReminderSafetyNet;
                if (next is { } nextAt && DateTimeOffset.FromUnixTimeMilliseconds(nextAt) < wakeAt) wakeAt = DateTimeOffset.FromUnixTimeMilliseconds(nextAt);
                var sleep = Task.Delay(wakeAt - now, Clock, stopping);
                // The clock may have passed the wake-up instant before the timer was armed: then do not sleep.
                if (Clock.GetUtcNow() >= wakeAt) continue;
                await Task.WhenAny(changed, slotFreed, sleep);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
            catch (Exception e)
            {
                runtime.Log.LogReminderLoopFailed(e);
                try { await Task.Delay(TimeSpan.FromSeconds(1), Clock, stopping); }
                catch (OperationCanceledException) { }
            }
        }
    }

    private void Start(ReminderRow claim)
    {
        _slots.Wait();
        var task = Task.Run(() => DeliverAsync(claim));
        _deliveries[task] = true;
        task.ContinueWith(t =>
        {
            _deliveries.TryRemove(t, out _);
            _slots.Release();
            _slotFreed.Pulse();
        }, TaskScheduler.Default);
    }

    /// <summary>Waits for deliveries in flight (a graceful stop lets them finish).</summary>
    public Task DrainAsync() => Task.WhenAll(_deliveries.Keys);

    private async Task DeliverAsync(ReminderRow claim)
    {
        var now = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        long? next = claim.PeriodMs == 0 ? null : NextTick(claim.DueAt, claim.PeriodMs, now);
        var status = new TickStatus(
            DateTimeOffset.FromUnixTimeMilliseconds(claim.FirstDue),
            TimeSpan.FromMilliseconds(claim.PeriodMs),
            DateTimeOffset.FromUnixTimeMilliseconds(claim.DueAt));
        try
        {
            await runtime.InvokeAsync(claim.Grain, async grain =>
            {
                if (grain is not IRemindable remindable)
                    throw new InvalidOperationException($"Grain {claim.Grain} received reminder '{claim.Name}' but does not implement IRemindable.");
                await remindable.ReceiveReminder(claim.Name, status);
                return true;
            }, new ReminderDelivery(claim, next));
        }
        catch (StaleReminderClaimException)
        {
            runtime.Log.LogReminderStale(claim.Name, claim.Grain);
        }
        catch (Exception) when (runtime.Killed.IsCancellationRequested)
        {
            // killed: the lease runs out and another silo delivers
        }
        catch (Exception e)
        {
            var retryAt = Clock.GetUtcNow() + Backoff(claim.Attempt);
            runtime.Log.LogReminderFailed(e, claim.Name, claim.Grain, claim.Attempt + 1, retryAt);
            try { await Table.RetryLaterAsync(claim, retryAt.ToUnixTimeMilliseconds()); }
            catch (Exception) { /* the lease will run out and the reminder be claimed again */ }
            runtime.Store.RemindersChanged.Pulse();
        }
    }

    /// <summary>1 s, 2 s, 4 s … up to a minute between attempts.</summary>
    public static TimeSpan Backoff(int attempt) => TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, Math.Min(attempt, 6))));

    /// <summary>The first tick after <paramref name="now"/>: ticks missed while the cluster was down are not replayed one by one.</summary>
    public static long NextTick(long dueAt, long periodMs, long now) =>
        dueAt + ((Math.Max(0, now - dueAt) / periodMs) + 1) * periodMs;
}
