using System.Diagnostics;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Tests.Runtime;

/// <summary>Several silos on one PostgreSQL database, in real time.</summary>
public sealed class PostgresClusterTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private async Task<TestCluster> ClusterAsync(DeliveryLog log, Func<SiloHostOptions, SiloHostOptions>? configure = null) =>
        new(StoreLocation.Parse($"postgres:{await database.CreateAnotherAsync()}"),
            s => s.AddSingleton(log).AddSingleton(new Deactivations()), configure: configure);

    [Fact]
    public async Task Two_silos_incrementing_one_counter_ten_thousand_times_concurrently_end_exact()
    {
        await using var cluster = await ClusterAsync(new DeliveryLog());
        var a = await cluster.StartSiloAsync();
        var b = await cluster.StartSiloAsync();

        async Task Hammer(SiloHost silo)
        {
            var counter = silo.GrainFactory.GetGrain<ICounterGrain>("shared");
            // 50 concurrent callers per silo, 5,000 increments per silo.
            await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(async () =>
            {
                for (var i = 0; i < 100; i++) await counter.Increment();
            })));
        }

        await Task.WhenAll(Hammer(a), Hammer(b));
        Assert.Equal(10_000, await a.GrainFactory.GetGrain<ICounterGrain>("shared").Get());
        Assert.Equal(10_000, await b.GrainFactory.GetGrain<ICounterGrain>("shared").Get());
        var stored = await a.Store.GrainStates.ReadAsync(null, new GrainId("counter", "shared"), false);
        Assert.Equal(10_000, stored!.Version);
    }

    [Fact]
    public async Task Each_reminder_tick_fires_on_exactly_one_of_two_silos()
    {
        var log = new DeliveryLog();
        await using var cluster = await ClusterAsync(log);
        var a = await cluster.StartSiloAsync();
        var b = await cluster.StartSiloAsync();
        var start = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.AddMilliseconds(300).ToUnixTimeMilliseconds()); // reminders keep ms
        var period = TimeSpan.FromSeconds(1);
        for (var i = 0; i < 20; i++)
            await (i % 2 == 0 ? a : b).GrainFactory.GetGrain<IReminderProbeGrain>($"r{i}").Schedule("beat", start, period);

        await Eventually.UntilAsync(() => Task.FromResult(log.All.GroupBy(d => d.Grain).Count(g => g.Count() >= 3)), n => n == 20, Deadline, "three ticks per grain");
        await cluster.StopAsync(a);
        await cluster.StopAsync(b);

        var duplicates = log.All.GroupBy(d => (d.Grain, d.Tick)).Where(g => g.Count() > 1).ToList();
        Assert.Empty(duplicates);
        // Every tick is on the schedule (start + k periods, no drift from late deliveries). A delivery more than a
        // period late may skip the ticks it missed (NextTick: no catch-up storm), which on two busy cores happens.
        Assert.All(log.All, d => Assert.Equal(0, (d.Tick - start).Ticks % period.Ticks));
    }

    [Fact]
    public async Task A_killed_silos_reminder_fires_on_the_survivor_within_lease_plus_one_second()
    {
        var lease = TimeSpan.FromSeconds(3);
        var log = new DeliveryLog { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        // Membership would declare the dead silo after 60 s: this test measures the lease alone.
        await using var cluster = await ClusterAsync(log, o => o with { ReminderLease = lease, DeadAfter = TimeSpan.FromSeconds(60) });
        var doomed = await cluster.StartSiloAsync("doomed");
        await doomed.GrainFactory.GetGrain<IReminderProbeGrain>("held").Schedule("job", DateTimeOffset.UtcNow, TimeSpan.Zero);
        await log.Entered.Task.WaitAsync(Deadline); // the doomed silo holds the claim, mid-delivery
        var survivor = await cluster.StartSiloAsync("survivor");
        var killedAt = Stopwatch.StartNew();
        await cluster.KillAsync(doomed);
        log.Gate.TrySetResult();

        await Eventually.UntilAsync(() => Task.FromResult(log.Count), n => n >= 1, Deadline, "the survivor to deliver");
        var elapsed = killedAt.Elapsed;
        Assert.True(elapsed <= lease + TimeSpan.FromSeconds(1), $"delivered {elapsed.TotalMilliseconds:0} ms after the kill; lease {lease.TotalMilliseconds:0} ms");
        Assert.Equal(1, await survivor.GrainFactory.GetGrain<IReminderProbeGrain>("held").Delivered());
        Assert.Empty(await survivor.Store.Reminders.ListAsync(new GrainId("probe", "held")));
    }

    [Fact]
    public async Task A_dead_silo_is_declared_by_heartbeat_and_its_leases_reclaimed_before_they_expire()
    {
        var log = new DeliveryLog { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var cluster = await ClusterAsync(log, o => o with
        {
            ReminderLease = TimeSpan.FromMinutes(5), HeartbeatInterval = TimeSpan.FromMilliseconds(200), DeadAfter = TimeSpan.FromSeconds(2),
        });
        var doomed = await cluster.StartSiloAsync("doomed");
        await doomed.GrainFactory.GetGrain<IReminderProbeGrain>("held").Schedule("job", DateTimeOffset.UtcNow, TimeSpan.Zero);
        await log.Entered.Task.WaitAsync(Deadline);
        var survivor = await cluster.StartSiloAsync("survivor");
        await cluster.KillAsync(doomed);
        log.Gate.TrySetResult();

        await Eventually.UntilAsync(() => Task.FromResult(log.Count), n => n >= 1, Deadline, "the survivor to deliver");
        var silos = await survivor.Store.Membership.ListAsync();
        Assert.Equal("dead", silos.Single(s => s.SiloId == "doomed").Status);
        Assert.Equal("active", silos.Single(s => s.SiloId == "survivor").Status);
    }

    [Fact]
    public async Task A_reminder_due_while_every_silo_was_down_fires_within_one_second_of_the_next_start()
    {
        var log = new DeliveryLog();
        await using var cluster = await ClusterAsync(log);
        var first = await cluster.StartSiloAsync();
        var due = DateTimeOffset.UtcNow.AddSeconds(1);
        await first.GrainFactory.GetGrain<IReminderProbeGrain>("sleeper").Schedule("wake", due, TimeSpan.Zero);
        await cluster.StopAsync(first);
        await Eventually.UntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow), now => now > due.AddMilliseconds(500), Deadline, "the due time to pass");
        Assert.Equal(0, log.Count);

        var started = Stopwatch.StartNew();
        await cluster.StartSiloAsync();
        await Eventually.UntilAsync(() => Task.FromResult(log.Count), n => n == 1, Deadline, "the missed reminder");
        Assert.True(started.Elapsed <= TimeSpan.FromSeconds(1), $"fired {started.Elapsed.TotalMilliseconds:0} ms after start");
    }

    [Fact]
    public async Task A_reminder_registered_elsewhere_wakes_a_sleeping_silo_by_notification()
    {
        var log = new DeliveryLog();
        // The silo's loop would otherwise sleep for five minutes: only NOTIFY can wake it in time.
        await using var cluster = await ClusterAsync(log, o => o with { ReminderSafetyNet = TimeSpan.FromMinutes(5) });
        await cluster.StartSiloAsync();
        await using var other = DataStore.Open(cluster.Location); // another process, as far as the silo can tell
        await using (var tx = await other.BeginAsync())
        {
            ReminderTable.Upsert(tx, new GrainId("probe", "remote"), "ping", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 0);
            await tx.CommitAsync();
        }
        other.PublishRemindersChanged();
        await Eventually.UntilAsync(() => Task.FromResult(log.Count), n => n == 1, Deadline, "the silo to be woken by NOTIFY");
    }
}
