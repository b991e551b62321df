using DataBuild.Protos;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Tests.Runtime;

/// <summary>The grain host's contract (state, turns, reminders), run against every store.</summary>
public abstract class GrainHostConformance : IAsyncLifetime
{
    protected static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    protected ManualTimeProvider Clock { get; } = new();
    protected DeliveryLog Log { get; } = new();
    protected Deactivations Deactivations { get; } = new();
    protected TestCluster Cluster { get; private set; } = null!;
    protected SiloHost Silo { get; private set; } = null!;
    protected IGrainFactory Grains => Silo.GrainFactory;

    protected abstract Task<StoreLocation> FreshStoreAsync();

    public async Task InitializeAsync()
    {
        Cluster = new TestCluster(await FreshStoreAsync(), s => s.AddSingleton(Log).AddSingleton(Deactivations), Clock);
        Silo = await Cluster.StartSiloAsync();
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    private async Task<long> CountRowsAsync(string sql, params object[] args)
    {
        await using var connection = await Silo.Store.OpenConnectionAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task State_survives_deactivation_and_each_write_bumps_the_version()
    {
        var counter = Grains.GetGrain<ICounterGrain>("c1");
        for (var i = 0; i < 5; i++) await counter.Increment();
        Assert.Equal(1, await Silo.CollectIdleAsync(TimeSpan.Zero));
        Assert.Contains("c1", Deactivations.Keys);
        Assert.Equal(5, await counter.Get());
        var stored = await Silo.Store.GrainStates.ReadAsync(null, new GrainId("counter", "c1"), forUpdate: false);
        Assert.Equal(5, stored!.Version);
    }

    [Fact]
    public async Task Concurrent_calls_to_one_grain_take_turns()
    {
        var counter = Grains.GetGrain<ICounterGrain>("busy");
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Task.Run(() => counter.Increment())));
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), results.Order());
        Assert.Equal(200, await counter.Get());
    }

    [Fact]
    public async Task A_turn_that_throws_after_writing_state_events_and_a_reminder_leaves_none_of_them_behind()
    {
        var counter = Grains.GetGrain<ICounterGrain>("fragile");
        await counter.Increment();
        var eventsBefore = (await Silo.Store.Events.ListAsync(new EventFilter())).Events.Count;

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => counter.IncrementThenFail());
        Assert.Equal("fails after writing", error.Message);

        Assert.Equal(1, await counter.Get()); // in memory too
        Assert.Equal(1, (await Silo.Store.GrainStates.ReadAsync(null, new GrainId("counter", "fragile"), false))!.Version);
        Assert.Equal(eventsBefore, (await Silo.Store.Events.ListAsync(new EventFilter())).Events.Count);
        Assert.Empty(await Silo.Store.Reminders.ListAsync(new GrainId("counter", "fragile")));
        Assert.Equal(2, await counter.Increment()); // the grain goes on from its committed state
    }

    [Fact]
    public async Task A_write_on_a_stale_version_is_refused_and_the_call_retried_on_fresh_state()
    {
        var id = new GrainId("counter", "contested");
        var counter = Grains.GetGrain<ICounterGrain>("contested");
        await counter.Increment(); // version 1, count 1

        // Another writer moves the row on (as another activation would).
        await using (var tx = await Silo.Store.BeginAsync())
        {
            GrainStateTable.Write(tx, id, 1, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new CounterState { Count = 41 }), 0);
            await tx.CommitAsync();
        }
        await using (var stale = await Silo.Store.BeginTurnAsync())
        {
            GrainStateTable.Write(stale, id, 1, [1], 0);
            await Assert.ThrowsAsync<InconsistentStateException>(() => stale.CommitAsync());
        }

        Assert.Equal(42, await counter.Increment());
        Assert.Equal(3, (await Silo.Store.GrainStates.ReadAsync(null, id, false))!.Version);
    }

    [Fact]
    public async Task A_grain_wrongly_assumed_new_is_retried_on_its_stored_state()
    {
        await Grains.GetGrain<ICounterGrain>("reused").Increment();
        await Silo.CollectIdleAsync(TimeSpan.Zero); // the next call activates afresh
        await Grains.GetNewGrain<ICounterGrain>("reused").Increment(); // its write on version 0 is refused, then retried
        Assert.Equal(2, await Grains.GetGrain<ICounterGrain>("reused").Get());
    }

    /// <summary>
    /// Regression: a call that found its activation dropped under it (another call's wrong guess that the grain was new
    /// had failed while this one waited for its turn) counted its retry as a conflict with another silo, and the fresh
    /// activation took its row lock at every turn from then on; on PostgreSQL such an activation also declines to run in
    /// its sender's commit (it failed <c>A_missing_dependency_that_failed_before_is_dispatched_again_from_its_stored_state</c> about one run in ten).
    /// </summary>
    [Fact]
    public async Task A_call_that_finds_its_activation_dropped_under_it_is_retried_without_locking_every_turn_after()
    {
        await Grains.GetGrain<ICounterGrain>("dropped").Increment();
        await Silo.CollectIdleAsync(TimeSpan.Zero); // the next call may activate it as new
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource();
        var guess = Grains.GetNewGrain<ICounterGrain>("dropped").IncrementOnceReleased(entered, release.Task);
        await entered.Task.WaitAsync(Deadline);
        var queued = Grains.GetGrain<ICounterGrain>("dropped").Increment(); // the same activation: waits for the guess's turn
        release.SetResult();
        await Task.WhenAll(guess, queued).WaitAsync(Deadline);

        Assert.Equal(3, await Grains.GetGrain<ICounterGrain>("dropped").Get());
        Assert.False(Silo.LocksEachTurn(new GrainId("counter", "dropped")));
    }

    [Fact]
    public async Task A_refused_turn_runs_again_at_once_from_the_last_committed_state_knowing_it_was_refused()
    {
        var counter = Grains.GetGrain<ICounterGrain>("refused");
        await counter.Increment();
        Assert.Equal(2, await counter.IncrementRefusedOnce()); // not 102: nothing of the refused run survives
        Assert.Equal(2, (await Silo.Store.GrainStates.ReadAsync(null, new GrainId("counter", "refused"), false))!.Version);
    }

    [Fact]
    public async Task A_call_cycle_fails_fast_with_the_chain_in_the_message()
    {
        var a = Grains.GetGrain<ICycleGrain>("a");
        Assert.Equal("c", await a.CallThrough(["b", "c"]));
        var error = await Assert.ThrowsAsync<GrainCallCycleException>(() => a.CallThrough(["b", "a"]).WaitAsync(Deadline));
        Assert.Contains("cycle/a → cycle/b → cycle/a", error.Message);
        await Assert.ThrowsAsync<GrainCallCycleException>(() => a.CallThrough(["a"]).WaitAsync(Deadline));
        Assert.Equal("b", await a.CallThrough(["b"])); // nothing stuck afterwards
    }

    [Fact]
    public async Task Idle_activations_are_collected_so_memory_follows_active_grains()
    {
        for (var i = 0; i < 100; i++) await Grains.GetGrain<ICounterGrain>($"idle-{i}").Increment();
        Assert.Equal(100, Silo.ActivationCount);
        Assert.Equal(0, await Silo.CollectIdleAsync()); // nothing is idle for 15 minutes yet
        Clock.Advance(TimeSpan.FromMinutes(10));
        await Grains.GetGrain<ICounterGrain>("idle-7").Increment();
        Clock.Advance(TimeSpan.FromMinutes(6)); // the collector runs every minute of (fake) time
        await Silo.CollectIdleAsync();
        Assert.Equal(1, Silo.ActivationCount);
        Assert.Equal(99, Deactivations.Keys.Count);
        Assert.DoesNotContain("idle-7", Deactivations.Keys);
        Assert.Equal(1, await Grains.GetGrain<ICounterGrain>("idle-3").Get());
    }

    [Fact]
    public async Task A_one_shot_reminder_fires_once_at_its_due_time_under_a_fake_clock()
    {
        var due = Clock.GetUtcNow().AddMinutes(10);
        await Grains.GetGrain<IReminderProbeGrain>("p").Schedule("once", due, TimeSpan.Zero);

        Clock.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(0, await Grains.GetGrain<IReminderProbeGrain>("p").Delivered());
        Clock.Advance(TimeSpan.FromMinutes(1));
        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n == 1, Deadline, "the reminder to fire");
        var delivery = Assert.Single(Log.All);
        Assert.Equal(due, delivery.Tick);
        Assert.Empty(await Silo.Store.Reminders.ListAsync(new GrainId("probe", "p")));
        Clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1, await Grains.GetGrain<IReminderProbeGrain>("p").Delivered());
    }

    [Fact]
    public async Task A_reminder_committed_just_after_the_loop_read_its_next_due_time_still_fires_on_time()
    {
        // Regression: the loop counted itself awake until it had planned its sleep, so a reminder committed after its
        // read of the next due time, due before the loop's 10 s safety net, told no one and fired 10 s late.
        var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Silo.Reminders.AfterNextDueRead = async () =>
        {
            Silo.Reminders.AfterNextDueRead = null;
            paused.TrySetResult();
            await resume.Task;
        };
        var due = Clock.GetUtcNow().AddSeconds(5);
        try
        {
            Silo.Store.PublishRemindersChanged(); // the loop looks again, and stops after its read
            await paused.Task.WaitAsync(Deadline);
            await Grains.GetGrain<IReminderProbeGrain>("window").Schedule("soon", due, TimeSpan.Zero);
        }
        finally
        {
            Silo.Reminders.AfterNextDueRead = null;
            resume.TrySetResult(); // never leave the loop paused, even when the test fails
        }
        Clock.Advance(TimeSpan.FromSeconds(5));
        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n == 1, Deadline, "the reminder to fire at its due time");
        Assert.Equal(due, Assert.Single(Log.All).Tick);
    }

    [Fact]
    public async Task A_reminder_loop_that_failed_looks_again_while_the_clock_stands_still()
    {
        // Regression (a CI run's flake, 2026-11-22): after a failure the loop paused for a second of the silo's clock.
        // A clock that stopped moving (a test's) then never woke it: a reminder due now was never claimed.
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var probe = Grains.GetGrain<IReminderProbeGrain>("after-failure");
        Silo.Reminders.AfterNextDueRead = async () =>
        {
            Silo.Reminders.AfterNextDueRead = null;
            // Written after the loop's claim and read, due now: only the loop's next look can deliver it.
            await probe.Schedule("due-now", Clock.GetUtcNow(), TimeSpan.FromHours(1));
            failed.TrySetResult();
            throw new InvalidOperationException("injected failure of the reminder loop");
        };
        try
        {
            Silo.Store.PublishRemindersChanged(); // the loop looks again, and fails after its read
            await failed.Task.WaitAsync(Deadline);
        }
        finally
        {
            Silo.Reminders.AfterNextDueRead = null;
        }
        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n >= 1, Deadline, "the reminder due now to fire without the clock moving");
        Assert.Equal("due-now", Log.All[0].Reminder);
    }

    [Fact]
    public async Task A_periodic_reminder_ticks_each_period_until_unregistered()
    {
        var start = Clock.GetUtcNow();
        var probe = Grains.GetGrain<IReminderProbeGrain>("tick");
        await probe.Schedule("every-minute", start.AddMinutes(1), TimeSpan.FromMinutes(1));
        for (var i = 1; i <= 3; i++)
        {
            Clock.Advance(TimeSpan.FromMinutes(1));
            await Eventually.UntilAsync(() => probe.Delivered(), n => n == i, Deadline, $"tick {i} to commit");
        }
        Assert.Equal([start.AddMinutes(1), start.AddMinutes(2), start.AddMinutes(3)], Log.All.Select(d => d.Tick));
        await probe.Cancel("every-minute");
        Clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(3, await probe.Delivered());
        Assert.Empty(await Silo.Store.Reminders.ListAsync(new GrainId("probe", "tick")));
    }

    [Fact]
    public async Task A_failed_delivery_is_retried_with_backoff()
    {
        Log.FailuresToInject["flaky"] = 2;
        var probe = Grains.GetGrain<IReminderProbeGrain>("flaky");
        await probe.Schedule("flaky", Clock.GetUtcNow(), TimeSpan.Zero);

        // First attempt fails at once; the retry waits 1 s, the next 2 s.
        var row = await Eventually.UntilAsync(() => Silo.Store.Reminders.ReadAsync(new GrainId("probe", "flaky"), "flaky"),
            r => r is { Attempt: 1 }, Deadline, "the first failure to be recorded");
        Assert.Equal(Clock.GetUtcNow().AddSeconds(1).ToUnixTimeMilliseconds(), row!.DueAt);
        Clock.Advance(TimeSpan.FromSeconds(1));
        row = await Eventually.UntilAsync(() => Silo.Store.Reminders.ReadAsync(new GrainId("probe", "flaky"), "flaky"),
            r => r is { Attempt: 2 }, Deadline, "the second failure to be recorded");
        Assert.Equal(0, Log.Count);
        Clock.Advance(TimeSpan.FromSeconds(2));
        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n == 1, Deadline, "the third attempt to succeed");
        Assert.Equal(3, Log.All[0].Attempt);
        Assert.Equal(1, await probe.Delivered());
    }

    [Fact]
    public async Task A_reminder_set_for_another_grain_is_delivered_after_the_turn_commits()
    {
        await Grains.GetGrain<IReminderProbeGrain>("sender").ScheduleFor("receiver", "hand-off", Clock.GetUtcNow());
        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n == 1, Deadline, "the hand-off");
        Assert.Equal("receiver", Log.All[0].Grain);
        Assert.Equal(1, await Grains.GetGrain<IReminderProbeGrain>("receiver").Delivered());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_message_whose_turn_calls_another_grain_is_delivered_once_whether_or_not_it_may_start_in_its_senders_commit(bool inSendersCommit)
    {
        var receiver = Grains.GetGrain<IReminderProbeGrain>("receiver");
        Assert.Equal(0, await receiver.Delivered()); // active and idle: a message to it may start ahead of its sender's commit
        await Grains.GetGrain<IReminderProbeGrain>("sender").ScheduleFor("receiver", "call:elsewhere", Clock.GetUtcNow(), inSendersCommit);

        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n == 1, Deadline, "the message");
        Assert.Equal(1, await receiver.Delivered());
        Assert.Empty(await Silo.Store.Reminders.ListAsync(new GrainId("probe", "receiver")));
        // Started in its sender's commit, the turn was refused at the grain call (it may not call out before its message
        // exists) and ran again after the commit; a message sent to be delivered after the commit ran once.
        Assert.Equal(inSendersCommit && MessagesStartInTheirSendersCommit ? 2 : 1, Log.All[0].Attempt);
    }

    /// <summary>Whether the store's commits take in the turns of their messages (<see cref="CommitJoin"/>: PostgreSQL's group commit).</summary>
    protected virtual bool MessagesStartInTheirSendersCommit => false;

    [Fact]
    public async Task A_message_sent_again_while_its_delivery_is_in_flight_is_delivered_again_and_the_first_delivery_is_void()
    {
        // Messages written on a silo go out leased to it and are delivered there, fenced by a token: the re-sent
        // message's new token must void the delivery already in flight, not be deleted by its completion.
        // The first is delivered after its sender's commit, not joined to it: a joined turn held past its sender's
        // commit is delivered again as a plain delivery, which may then run before or after the re-sent message's
        // (a third run of the receiver or a second), and the test pins the plain path's order.
        Log.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sender = Grains.GetGrain<IReminderProbeGrain>("sender");
        await sender.ScheduleFor("receiver", "note", Clock.GetUtcNow(), inSendersCommit: false);
        await Log.Entered.Task.WaitAsync(Deadline); // the first delivery is inside the receiver's turn
        await sender.ScheduleFor("receiver", "note", Clock.GetUtcNow());
        Log.Gate.TrySetResult();

        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n == 1, Deadline, "the second delivery");
        Assert.Equal(2, Log.All[0].Attempt); // the receiver ran twice, and only the second turn committed
        Assert.Equal(1, await Grains.GetGrain<IReminderProbeGrain>("receiver").Delivered());
        Assert.Empty(await Silo.Store.Reminders.ListAsync(new GrainId("probe", "receiver")));
    }

    [Fact]
    public async Task A_message_sent_while_every_delivery_slot_is_busy_is_claimed_by_the_loop_once_a_slot_frees()
    {
        var log = new DeliveryLog { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var cluster = new TestCluster(await FreshStoreAsync(), s => s.AddSingleton(log).AddSingleton(new Deactivations()), Clock,
            o => o with { MaxConcurrentReminderDeliveries = 1 });
        var silo = await cluster.StartSiloAsync();
        var sender = silo.GrainFactory.GetGrain<IReminderProbeGrain>("sender");
        await sender.ScheduleFor("first", "note", Clock.GetUtcNow());
        await log.Entered.Task.WaitAsync(Deadline); // the only slot is taken
        await sender.ScheduleFor("second", "note", Clock.GetUtcNow());
        log.Gate.TrySetResult();

        await Eventually.UntilAsync(() => Task.FromResult(log.Count), n => n == 2, Deadline, "both deliveries");
        Assert.Equal(["first", "second"], log.All.Select(d => d.Grain).Order());
    }

    [Fact]
    public async Task A_reminder_due_while_no_silo_ran_fires_when_one_starts()
    {
        await Grains.GetGrain<IReminderProbeGrain>("late").Schedule("missed", Clock.GetUtcNow().AddMinutes(1), TimeSpan.Zero);
        await Cluster.StopAsync(Silo);
        Clock.Advance(TimeSpan.FromHours(2));
        Silo = await Cluster.StartSiloAsync();
        await Eventually.UntilAsync(() => Task.FromResult(Log.Count), n => n == 1, Deadline, "the missed reminder");
    }
}

public sealed class SqliteGrainHostTests : GrainHostConformance, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-grains-").FullName;

    private int _stores;

    // A new file each time: a SQLite store takes one silo, and a test may start a second cluster of its own.
    protected override Task<StoreLocation> FreshStoreAsync() =>
        Task.FromResult(StoreLocation.Parse($"sqlite:{Path.Combine(_folder, $"databuild-{Interlocked.Increment(ref _stores)}.db")}"));

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}

public sealed class PostgresGrainHostTests(PostgresDatabase database) : GrainHostConformance, IClassFixture<PostgresDatabase>
{
    protected override bool MessagesStartInTheirSendersCommit => true;

    protected override async Task<StoreLocation> FreshStoreAsync() =>
        StoreLocation.Parse($"postgres:{await database.CreateAnotherAsync()}");
}
