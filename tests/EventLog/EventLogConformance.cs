using System.Collections.Concurrent;
using DataBuild.Protos;
using DataBuild.Runtime.EventLog;
using DataBuild.Runtime.Storage;
using static DataBuild.Tests.EventLog.SampleEvents;

namespace DataBuild.Tests.EventLog;

/// <summary>The event log contract. Every provider runs this same suite.</summary>
public abstract class EventLogConformance : IAsyncLifetime
{
    protected IDataStore Store { get; private set; } = null!;

    /// <summary>A store on a fresh, empty database (not yet migrated).</summary>
    protected abstract Task<IDataStore> OpenFreshStoreAsync();

    public async Task InitializeAsync()
    {
        Store = await OpenFreshStoreAsync();
        await Store.MigrateAsync();
    }

    public async Task DisposeAsync() => await Store.DisposeAsync();

    protected async Task<IReadOnlyList<long>> AppendAsync(params DataBuildEvent[] events)
    {
        await using var tx = await Store.BeginAsync();
        var indexes = await Store.Events.AppendAsync(tx, events);
        await tx.CommitAsync();
        return indexes;
    }

    private async Task<List<DataBuildEvent>> ReadAllAsync(EventFilter filter)
    {
        var all = new List<DataBuildEvent>();
        while (true)
        {
            var page = await Store.Events.ListAsync(filter);
            all.AddRange(page.Events);
            if (!page.HasMore) return all;
            filter = filter.Clone();
            filter.SinceIdx = page.NextIdx;
        }
    }

    [Fact]
    public async Task Every_event_type_round_trips_with_index_and_timestamp()
    {
        var events = OneOfEach();
        Assert.Equal(EventTypeNames.All.Count, events.Select(EventTypeNames.Of).Distinct().Count());
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var indexes = await AppendAsync([.. events]);

        var page = await Store.Events.ListAsync(new EventFilter { Limit = 100 });

        Assert.False(page.HasMore);
        Assert.Equal(indexes.Select(i => (ulong)i), page.Events.Select(e => e.Index));
        Assert.True(indexes.Zip(indexes.Skip(1)).All(p => p.First < p.Second), "indexes increase in append order");
        for (var i = 0; i < events.Count; i++)
        {
            var read = page.Events[i].Clone();
            Assert.InRange((long)read.Timestamp, before - 1000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1000);
            read.Index = 0; read.Timestamp = 0;
            Assert.Equal(events[i], read);
        }
        Assert.True(page.NextIdx >= page.Events[^1].Index);
        Assert.Empty((await Store.Events.ListAsync(new EventFilter { SinceIdx = page.NextIdx })).Events);
    }

    [Fact]
    public async Task A_rolled_back_transaction_leaves_no_events()
    {
        await using (var tx = await Store.BeginAsync())
        {
            await Store.Events.AppendAsync(tx, [WantCreate("w-gone", "a/1")]);
            // disposed without commit
        }
        await AppendAsync(WantCreate("w-kept", "a/2"));
        var page = await Store.Events.ListAsync(new EventFilter());
        Assert.Equal(["w-kept"], page.Events.Select(e => e.WantCreate.WantId));
    }

    [Fact]
    public async Task Filters_select_by_type_want_partition_pattern_label_and_run()
    {
        await AppendAsync(
            WantCreate("w-a", "summary/date=2024-01-01", "summary/date=2024-01-02"),
            WantCreate("w-b", "reviews/date=2024-01-01"),
            JobRunSucceeded("run-x", "summarise", "summary/date=2024-01-01"),
            JobRunSucceeded("run-y", "clean", "reviews/date=2024-01-01"),
            new DataBuildEvent { WantSatisfied = new WantSatisfiedEventV1 { WantId = "w-a" } });

        async Task<string[]> Kinds(EventFilter f) =>
            (await ReadAllAsync(f)).Select(e => $"{EventTypeNames.Of(e)}:{e.WantCreate?.WantId ?? e.JobRunSucceeded?.JobRunId ?? e.WantSatisfied?.WantId}").ToArray();

        Assert.Equal(["job_run_succeeded:run-x", "job_run_succeeded:run-y"], await Kinds(new EventFilter { EventTypes = { "job_run_succeeded" } }));
        Assert.Equal(["want_create:w-a", "want_satisfied:w-a"], await Kinds(new EventFilter { WantIds = { "w-a" } }));
        Assert.Equal(["want_create:w-a", "want_create:w-b"], await Kinds(new EventFilter { WantIds = { "w-a", "w-b" }, EventTypes = { "want_create" } }));
        Assert.Equal(["want_create:w-b", "job_run_succeeded:run-y"], await Kinds(new EventFilter { PartitionRefs = { "reviews/date=2024-01-01" } }));
        Assert.Equal(["want_create:w-a", "job_run_succeeded:run-x"], await Kinds(new EventFilter { PartitionPatterns = { @"summary/date=\d{4}-\d{2}-\d{2}" } }));
        // A pattern must match the whole ref, and one without a literal prefix still works.
        Assert.Empty(await Kinds(new EventFilter { PartitionPatterns = { "summary" } }));
        Assert.Equal(["want_create:w-a", "want_create:w-b", "job_run_succeeded:run-x", "job_run_succeeded:run-y"],
            await Kinds(new EventFilter { PartitionPatterns = { @".*date=2024-01-01" } }));
        // Refs and patterns are alternatives for the partition; other fields narrow further.
        Assert.Equal(["want_create:w-a", "want_create:w-b"],
            await Kinds(new EventFilter { PartitionPatterns = { "summary/.*" }, PartitionRefs = { "reviews/date=2024-01-01" }, EventTypes = { "want_create" } }));
        Assert.Equal(["job_run_succeeded:run-x"], await Kinds(new EventFilter { JobLabels = { "summarise" } }));
        Assert.Equal(["job_run_succeeded:run-y"], await Kinds(new EventFilter { JobRunIds = { "run-y" } }));
        Assert.Equal(["job_run_succeeded:run-y"], await Kinds(new EventFilter { JobLabels = { "clean", "summarise" }, PartitionRefs = { "reviews/date=2024-01-01" } }));
        Assert.Empty(await Kinds(new EventFilter { JobLabels = { "clean" }, WantIds = { "w-a" } }));
        Assert.Empty(await Kinds(new EventFilter { WantIds = { "nobody" } }));
    }

    [Fact]
    public async Task A_child_wants_creation_is_found_under_its_parent_so_a_follower_of_the_parent_finds_the_child()
    {
        var child = WantCreate("w-child", "clean/date=2024-01-01");
        child.WantCreate.ParentWantId = "w-parent";
        child.WantCreate.RootWantId = "w-parent";
        await AppendAsync(WantCreate("w-parent", "summary/date=2024-01-01"), child,
            new DataBuildEvent { WantSatisfied = new WantSatisfiedEventV1 { WantId = "w-child" } });

        var parents = await ReadAllAsync(new EventFilter { WantIds = { "w-parent" } });
        Assert.Equal(["w-parent", "w-child"], parents.Select(e => e.WantCreate.WantId));
        // The child's own events stay its own.
        Assert.Equal(2, (await ReadAllAsync(new EventFilter { WantIds = { "w-child" } })).Count);
    }

    [Fact]
    public async Task Pages_follow_since_idx_with_has_more_and_next_idx()
    {
        for (var batch = 0; batch < 5; batch++)
            await AppendAsync([.. Enumerable.Range(0, 5).Select(i => WantCreate($"w-{batch * 5 + i}", $"p/{batch * 5 + i}"))]);

        var first = await Store.Events.ListAsync(new EventFilter { Limit = 10 });
        Assert.Equal(10, first.Events.Count);
        Assert.True(first.HasMore);
        Assert.Equal(first.Events[^1].Index, first.NextIdx);

        var rest = await Store.Events.ListAsync(new EventFilter { Limit = 100, SinceIdx = first.NextIdx });
        Assert.False(rest.HasMore);
        Assert.Equal(Enumerable.Range(10, 15).Select(i => $"w-{i}"), rest.Events.Select(e => e.WantCreate.WantId));
        Assert.All(rest.Events, e => Assert.True(e.Index > first.NextIdx));

        // An exactly full last page says so only when more exists.
        var exact = await Store.Events.ListAsync(new EventFilter { Limit = 15, SinceIdx = first.NextIdx });
        Assert.False(exact.HasMore);
        Assert.Equal(15, exact.Events.Count);

        // Nothing new: the cursor stays put (or moves forward), never back.
        var empty = await Store.Events.ListAsync(new EventFilter { SinceIdx = rest.NextIdx });
        Assert.Empty(empty.Events);
        Assert.True(empty.NextIdx >= rest.NextIdx);
    }

    [Fact]
    public async Task A_filtered_follower_skips_ahead_past_events_that_do_not_match()
    {
        await AppendAsync([.. Enumerable.Range(0, 50).Select(i => WantCreate($"noise-{i}", $"noise/{i}"))]);
        var page = await Store.Events.ListAsync(new EventFilter { WantIds = { "signal" } });
        Assert.Empty(page.Events);
        var all = await Store.Events.ListAsync(new EventFilter { Limit = 1000 });
        Assert.True(page.NextIdx >= all.Events[^1].Index, "the cursor moved past what it has already looked at");

        await AppendAsync(WantCreate("signal", "s/1"));
        var next = await Store.Events.ListAsync(new EventFilter { WantIds = { "signal" }, SinceIdx = page.NextIdx });
        Assert.Equal(["signal"], next.Events.Select(e => e.WantCreate.WantId));
    }

    [Fact]
    public async Task A_pattern_filter_fills_pages_across_many_non_matching_rows()
    {
        // Matching rows are sparse among rows sharing the literal prefix, so the provider must read on.
        var events = Enumerable.Range(0, 1200).Select(i => WantCreate($"w-{i}", i % 400 == 0 ? $"day/2024-01-{i / 400 + 1:00}" : $"day/x{i}")).ToArray();
        await AppendAsync(events);
        var page = await Store.Events.ListAsync(new EventFilter { PartitionPatterns = { @"day/\d{4}-\d{2}-\d{2}" }, Limit = 2 });
        Assert.Equal(["w-0", "w-400"], page.Events.Select(e => e.WantCreate.WantId));
        Assert.True(page.HasMore);
        var rest = await Store.Events.ListAsync(new EventFilter { PartitionPatterns = { @"day/\d{4}-\d{2}-\d{2}" }, SinceIdx = page.NextIdx });
        Assert.Equal(["w-800"], rest.Events.Select(e => e.WantCreate.WantId));
        Assert.False(rest.HasMore);
    }

    [Fact]
    public async Task Bad_filters_are_rejected_with_a_clear_message()
    {
        var type = await Assert.ThrowsAsync<ArgumentException>(() => Store.Events.ListAsync(new EventFilter { EventTypes = { "want_created" } }));
        Assert.Contains("want_created", type.Message);
        Assert.Contains("want_create", type.Message);
        var regex = await Assert.ThrowsAsync<ArgumentException>(() => Store.Events.ListAsync(new EventFilter { PartitionPatterns = { "day/(" } }));
        Assert.Contains("day/(", regex.Message);
    }

    [Fact]
    public async Task Migrating_again_is_a_no_op_and_keeps_the_data()
    {
        await AppendAsync(WantCreate("w-before", "a/1"));
        await Store.MigrateAsync();
        await Store.MigrateAsync();
        await AppendAsync(WantCreate("w-after", "a/2"));
        var page = await Store.Events.ListAsync(new EventFilter());
        Assert.Equal(["w-before", "w-after"], page.Events.Select(e => e.WantCreate.WantId));
        Assert.True(await Store.IsReachableAsync());
    }

    [Fact]
    public async Task Eight_concurrent_appenders_and_a_follower_see_every_event_exactly_once_in_order()
    {
        const int appenders = 8, perAppender = 10_000;
        var seen = new ConcurrentDictionary<string, int>();
        var done = 0;
        var followerOrder = new List<ulong>();

        async Task Append(int appender)
        {
            var random = new Random(appender);
            var written = 0;
            while (written < perAppender)
            {
                var size = Math.Min(perAppender - written, random.Next(1, 200));
                await using var tx = await Store.BeginAsync();
                await Store.Events.AppendAsync(tx, [.. Enumerable.Range(written, size).Select(i => WantCreate($"{appender}-{i}", $"p/{appender}/{i}"))]);
                // Hold some transactions open so commits land out of index order.
                if (random.Next(4) == 0) await Task.Yield();
                if (random.Next(10) == 0) await Task.Delay(random.Next(1, 5));
                await tx.CommitAsync();
                written += size;
            }
        }

        async Task Follow()
        {
            ulong since = 0;
            var deadline = DateTime.UtcNow.AddMinutes(4);
            while (seen.Count < appenders * perAppender && DateTime.UtcNow < deadline)
            {
                var next = Store.EventsAppended.Next;
                var page = await Store.Events.ListAsync(new EventFilter { SinceIdx = since, Limit = 1000 });
                foreach (var e in page.Events)
                {
                    followerOrder.Add(e.Index);
                    seen.AddOrUpdate(e.WantCreate.WantId, 1, (_, n) => n + 1);
                }
                since = page.NextIdx;
                if (!page.HasMore && Volatile.Read(ref done) == 0) await Task.WhenAny(next, Task.Delay(200));
                else if (!page.HasMore && page.Events.Count == 0) await Task.WhenAny(next, Task.Delay(50));
            }
        }

        var follower = Task.Run(Follow);
        await Task.WhenAll(Enumerable.Range(0, appenders).Select(a => Task.Run(() => Append(a))));
        Volatile.Write(ref done, 1);
        await follower;

        Assert.Equal(appenders * perAppender, seen.Count);
        Assert.All(seen, kv => Assert.Equal(1, kv.Value));
        Assert.True(followerOrder.Zip(followerOrder.Skip(1)).All(p => p.First < p.Second), "the follower saw strictly increasing indexes");

        // A reader starting from scratch afterwards sees the same sequence.
        var replay = await ReadAllAsync(new EventFilter { Limit = 5000 });
        Assert.Equal(followerOrder, replay.Select(e => e.Index));
    }
}
