using DataBuild.Protos;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Runtime.Storage.Postgres;
using DataBuild.Tests.Infrastructure;
using Npgsql;
using static DataBuild.Tests.EventLog.SampleEvents;

namespace DataBuild.Tests.Runtime;

/// <summary>
/// PostgreSQL commits: turns that commit at the same moment share one transaction, yet each is all or nothing; an
/// explicit transaction sends its last writes and its COMMIT together, and a failure among them commits nothing.
/// </summary>
public sealed class GroupCommitTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    private const int Turns = 40;
    private const int CheckFails = 7;
    private const int ConstraintFails = 23;

    private sealed class KeyTakenException() : Exception("the key is taken");

    private static void ClaimKey(StoreTransaction tx, string key, string wantId) =>
        tx.DeferExpecting(1, () => new KeyTakenException(),
            "INSERT INTO idempotency_keys (key, want_id, request_hash, created_at) VALUES ($1, $2, '', 0) ON CONFLICT (key) DO NOTHING", key, wantId);

    /// <summary>A fresh store in which the idempotency key "taken" is already claimed.</summary>
    private async Task<IDataStore> StoreWithTakenKeyAsync()
    {
        var store = DataStore.Open(StoreLocation.Parse($"postgres:{await database.CreateAnotherAsync()}"));
        await store.MigrateAsync();
        await using var setup = await store.BeginTurnAsync();
        ClaimKey(setup, "taken", "earlier");
        await setup.CommitAsync();
        return store;
    }

    [Fact]
    public async Task Turns_committed_at_once_share_transactions_and_a_failing_turn_fails_alone_with_its_own_error()
    {
        await using var store = await StoreWithTakenKeyAsync();

        var outcomes = await CommitAtOnceAsync(store, (tx, i) =>
        {
            store.Events.AppendDeferred(tx, [WantCreate($"w{i}", $"p/{i}"), WantCreate($"w{i}-second", $"p/{i}")]);
            if (i == CheckFails) ClaimKey(tx, "taken", $"w{i}"); // a deferred check that fails on the server
            else if (i == ConstraintFails)
                tx.Defer("INSERT INTO idempotency_keys (key, want_id, request_hash, created_at) VALUES ('taken', $1, '', 0)", $"w{i}"); // a unique violation
            else ClaimKey(tx, $"k{i}", $"w{i}");
        });

        Assert.IsType<KeyTakenException>(outcomes[CheckFails]);
        Assert.Equal(PostgresErrorCodes.UniqueViolation, Assert.IsType<PostgresException>(outcomes[ConstraintFails]).SqlState);
        Assert.All(outcomes.Where((_, i) => i != CheckFails && i != ConstraintFails), Assert.Null);

        // Every other turn committed all of its writes, and neither failing turn left anything behind.
        var events = (await store.Events.ListAsync(new EventFilter { Limit = 1000 })).Events;
        var expected = Enumerable.Range(0, Turns).Where(i => i != CheckFails && i != ConstraintFails)
            .SelectMany(i => new[] { $"w{i}", $"w{i}-second" }).Order().ToList();
        Assert.Equal(expected, events.Select(e => e.WantCreate.WantId).Order().ToList());
        await using (var connection = await store.OpenConnectionAsync())
        await using (var command = Sql.Command(connection, null, "SELECT key FROM idempotency_keys WHERE key <> 'taken' ORDER BY key"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            var keys = new List<string>();
            while (await reader.ReadAsync()) keys.Add(reader.GetString(0));
            Assert.Equal(Enumerable.Range(0, Turns).Where(i => i != CheckFails && i != ConstraintFails).Select(i => $"k{i}").Order(), keys);
        }

        // A turn's two events are adjacent, and some turns shared a transaction (the same index base) with others.
        var byTransaction = events.GroupBy(e => e.Index >> 16).ToList();
        Assert.Contains(byTransaction, t => t.Select(e => e.WantCreate.WantId.Split('-')[0]).Distinct().Count() > 1);
        foreach (var want in events.GroupBy(e => e.WantCreate.WantId.Split('-')[0]))
        {
            var pair = want.OrderBy(e => e.Index).ToList();
            Assert.Equal(pair[0].Index + 1, pair[1].Index);
        }
    }

    [Fact]
    public async Task A_turn_whose_events_cannot_be_stored_fails_alone_though_its_groups_events_are_inserted_as_one_statement()
    {
        await using var store = await StoreWithTakenKeyAsync();
        const int unstorable = 5;
        // A key longer than a btree index row may be (about 2.7 kB even compressed): the insert of the group's events fails.
        var tooLong = "p/" + string.Concat(Enumerable.Range(0, 300).Select(_ => Guid.NewGuid().ToString("N")));

        var outcomes = await CommitAtOnceAsync(store, (tx, i) =>
        {
            store.Events.AppendDeferred(tx, [WantCreate($"w{i}", i == unstorable ? tooLong : $"p/{i}")]);
            ClaimKey(tx, $"k{i}", $"w{i}");
        });

        Assert.Equal(PostgresErrorCodes.ProgramLimitExceeded, Assert.IsType<PostgresException>(outcomes[unstorable]).SqlState);
        Assert.All(outcomes.Where((_, i) => i != unstorable), Assert.Null);
        var events = (await store.Events.ListAsync(new EventFilter { Limit = 1000 })).Events;
        Assert.Equal(Enumerable.Range(0, Turns).Where(i => i != unstorable).Select(i => $"w{i}").Order(), events.Select(e => e.WantCreate.WantId).Order());
        Assert.Contains(events.GroupBy(e => e.Index >> 16), t => t.Count() > 1); // some turns did share a transaction
        // Every event is found by its partition's key: the merged statement filed each turn's keys under its own events.
        foreach (var e in events)
        {
            var found = (await store.Events.ListAsync(new EventFilter { PartitionRefs = { e.WantCreate.Partitions[0].Str }, Limit = 10 })).Events;
            Assert.Equal(e.Index, Assert.Single(found).Index);
        }
    }

    [Fact]
    public async Task An_explicit_transaction_whose_last_batch_fails_a_check_commits_nothing_and_the_next_one_commits_everything()
    {
        await using var store = await StoreWithTakenKeyAsync();

        async Task<Exception?> CommitAsync(string key)
        {
            await using var tx = await store.BeginTurnAsync();
            ClaimKey(tx, $"{key}-first", "w");
            await tx.FlushAsync(); // an explicit transaction from here on
            store.Events.AppendDeferred(tx, [WantCreate($"w-{key}", "p/1")]);
            ClaimKey(tx, key, "w");
            try
            {
                await tx.CommitAsync();
                return null;
            }
            catch (KeyTakenException e)
            {
                return e;
            }
        }

        Assert.IsType<KeyTakenException>(await CommitAsync("taken"));
        Assert.Null(await CommitAsync("free"));

        Assert.Equal(["w-free"], (await store.Events.ListAsync(new EventFilter())).Events.Select(e => e.WantCreate.WantId));
        await using var connection = await store.OpenConnectionAsync();
        await using var command = Sql.Command(connection, null, "SELECT string_agg(key, ',' ORDER BY key) FROM idempotency_keys");
        Assert.Equal("free,free-first,taken", await command.ExecuteScalarAsync());
    }

    /// <summary>
    /// Regression: a turn that lost an idempotency key to a turn of its own group was told so before the winner's
    /// group had committed, so the API could not read the winner back and answered 500.
    /// </summary>
    [Fact]
    public async Task A_turn_told_its_key_is_taken_can_already_read_the_turn_that_took_it()
    {
        await using var store = await StoreWithTakenKeyAsync();

        async Task<bool> ClaimAsync(int i)
        {
            try
            {
                await using var tx = await store.BeginTurnAsync();
                store.Events.AppendDeferred(tx, [WantCreate($"w{i}", $"p/{i}")]);
                ClaimKey(tx, "shared", $"w{i}");
                await tx.CommitAsync();
                return true;
            }
            catch (KeyTakenException)
            {
                await using var connection = await store.OpenConnectionAsync();
                await using var read = Sql.Command(connection, null, "SELECT want_id FROM idempotency_keys WHERE key = 'shared'");
                Assert.NotNull(await read.ExecuteScalarAsync());
                return false;
            }
        }

        var won = await Task.WhenAll(Enumerable.Range(0, Turns).Select(ClaimAsync));
        Assert.Equal(1, won.Count(w => w));
    }

    /// <summary>
    /// Regression (found in review): a grouped turn whose fence waited for a grain's turn lock held by another silo's
    /// locked turn held up every turn of its group with it, and a wait through that silo's grain calls could deadlock.
    /// </summary>
    [Fact]
    public async Task A_turn_waiting_for_a_grain_lock_held_elsewhere_does_not_hold_up_the_rest_of_its_group()
    {
        await using var store = await StoreWithTakenKeyAsync();
        var contended = new GrainId("counter", "held-elsewhere");
        // Another silo's locked turn on the grain: it holds the grain's turn lock until it ends.
        var elsewhere = await store.BeginAsync();
        await store.GrainStates.ReadAsync(elsewhere, contended, forUpdate: true);

        async Task Turn(int i)
        {
            await using var tx = await store.BeginTurnAsync();
            if (i == 0) GrainStateTable.Fence(tx, contended, 0);
            store.Events.AppendDeferred(tx, [WantCreate($"w{i}", $"p/{i}")]);
            ClaimKey(tx, $"k{i}", $"w{i}");
            await tx.CommitAsync();
        }

        var turns = Enumerable.Range(0, Turns).Select(Turn).ToList();
        await Task.WhenAll(turns.Skip(1)).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.False(turns[0].IsCompleted, "the fenced turn waits for the lock");

        await elsewhere.DisposeAsync(); // the other silo's turn ends
        await turns[0].WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(Turns, (await store.Events.ListAsync(new EventFilter { Limit = 1000 })).Events.Count);
    }

    [Fact]
    public async Task A_turn_joined_to_its_sender_commits_in_the_senders_transaction_and_not_at_all_when_the_sender_fails()
    {
        await using var store = await StoreWithTakenKeyAsync();
        // However slow this machine is to start the joined turn, the sender waits for it: this pins what a join does,
        // not how often one arrives in time.
        ((PostgresStore)store).CommitJoinWait = TimeSpan.FromSeconds(20);

        // The sender claims a key; the joined turn (its message's) removes it, which it can only do behind the sender.
        async Task<(Exception? Sender, Exception? Joined)> SendAsync(string key, bool senderFails)
        {
            Task<Exception?>? joined = null;
            Exception? sent = null;
            try
            {
                await using var tx = await store.BeginTurnAsync();
                store.Events.AppendDeferred(tx, [WantCreate($"sender-{key}", "p/s")]);
                ClaimKey(tx, key, "sender");
                if (senderFails) ClaimKey(tx, "taken", "sender");
                tx.OnCommittedOrJoined(() => { }, join =>
                {
                    joined = StartJoinedTurn(store, join, r =>
                    {
                        store.Events.AppendDeferred(r, [WantCreate($"joined-{key}", "p/j")]);
                        r.DeferExpecting(1, () => new KeyTakenException(), "DELETE FROM idempotency_keys WHERE key = $1", key);
                    });
                    return true;
                });
                await tx.CommitAsync();
            }
            catch (Exception e)
            {
                sent = e;
            }
            return (sent, await joined!.WaitAsync(TimeSpan.FromSeconds(20)));
        }

        var committed = await SendAsync("kept", senderFails: false);
        Assert.Null(committed.Sender);
        Assert.Null(committed.Joined);
        var failed = await SendAsync("lost", senderFails: true);
        Assert.IsType<KeyTakenException>(failed.Sender);
        Assert.NotNull(failed.Joined);

        var events = (await store.Events.ListAsync(new EventFilter { Limit = 1000 })).Events;
        Assert.Equal(["joined-kept", "sender-kept"], events.Select(e => e.WantCreate.WantId).Order());
        Assert.Equal(events[0].Index >> 16, events[1].Index >> 16); // one transaction, the sender's first
        Assert.Equal("sender-kept", events[0].WantCreate.WantId);
        await using var connection = await store.OpenConnectionAsync();
        await using var command = Sql.Command(connection, null, "SELECT count(*) FROM idempotency_keys WHERE key <> 'taken'");
        Assert.Equal(0L, await command.ExecuteScalarAsync()); // "kept" claimed then removed; "lost" never claimed
    }

    /// <summary>
    /// A message sent by one turn and delivered by a turn joined to it, in one group, is folded into one statement; what
    /// is left must be what the two writes would have left: no row, even where a message of the same name was already
    /// waiting (the sending replaced it), and the sent message itself when the delivering turn fails.
    /// </summary>
    [Fact]
    public async Task A_message_sent_and_delivered_in_one_group_leaves_no_row_and_stays_when_its_delivery_fails()
    {
        await using var store = await StoreWithTakenKeyAsync();
        ((PostgresStore)store).CommitJoinWait = TimeSpan.FromSeconds(20);
        var receiver = new GrainId("probe", "receiver");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using (var older = await store.BeginAsync())
        {
            ReminderTable.Upsert(older, receiver, "note", now + 60_000, 0); // a message of the same name, waiting
            await older.CommitAsync();
        }

        async Task<(ReminderRow Sent, Exception? Delivery)> SendAndDeliverAsync(bool deliveryFails)
        {
            Task<Exception?>? delivery = null;
            await using var tx = await store.BeginTurnAsync();
            var sent = ReminderTable.UpsertLeased(tx, receiver, "note", now, "silo-a", now + 30_000, Random.Shared.NextInt64(1L << 40, 1L << 62));
            tx.OnCommittedOrJoined(() => { }, join =>
            {
                delivery = StartJoinedTurn(store, join, r =>
                {
                    ReminderTable.Complete(r, sent, null, () => new InvalidOperationException("stale claim"));
                    if (deliveryFails) ClaimKey(r, "taken", "receiver");
                });
                return true;
            });
            await tx.CommitAsync();
            return (sent, await delivery!.WaitAsync(TimeSpan.FromSeconds(20)));
        }

        var delivered = await SendAndDeliverAsync(deliveryFails: false);
        Assert.Null(delivered.Delivery);
        Assert.Empty(await store.Reminders.ListAsync(receiver));

        var failed = await SendAndDeliverAsync(deliveryFails: true);
        Assert.IsType<KeyTakenException>(failed.Delivery);
        var waiting = Assert.Single(await store.Reminders.ListAsync(receiver));
        Assert.Equal(failed.Sent.Version, waiting.Version); // the message as its sender wrote it, for its next delivery
    }

    [Fact]
    public async Task Grain_states_written_together_all_commit_and_a_grain_that_moved_fails_only_its_own_turn()
    {
        await using var store = await StoreWithTakenKeyAsync();
        const int moved = 9;
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        GrainId Grain(int i) => new("probe", $"g{i}");
        await using (var setup = await store.BeginTurnAsync())
        {
            GrainStateTable.Write(setup, Grain(moved), 0, [1], now); // another writer got there first: version 1
            await setup.CommitAsync();
        }

        var outcomes = await CommitAtOnceAsync(store, (tx, i) =>
        {
            var fence = GrainStateTable.PlaceFence(tx, Grain(i), 0); // every turn read "no state yet"
            store.Events.AppendDeferred(tx, [WantCreate($"w{i}", $"p/{i}")]);
            ReminderTable.Upsert(tx, Grain(i), "deadline", now + 60_000 + i, 0);
            GrainStateTable.FenceAndWrite(tx, fence, Grain(i), 0, [(byte)i, 2], now);
        });

        Assert.IsType<InconsistentStateException>(outcomes[moved]);
        Assert.All(outcomes.Where((_, i) => i != moved), Assert.Null);
        await using var connection = await store.OpenConnectionAsync();
        await using var command = Sql.Command(connection, null,
            "SELECT g.grain_key, g.version, g.payload, g.xmin::text, r.due_at FROM grain_state g LEFT JOIN reminders r USING (grain_type, grain_key) WHERE g.grain_type = 'probe'");
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new Dictionary<string, (long Version, byte[] Payload, string Transaction, long? Due)>();
        while (await reader.ReadAsync())
            rows[reader.GetString(0)] = (reader.GetInt64(1), (byte[])reader[2], reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetInt64(4));
        Assert.Equal(Turns, rows.Count);
        for (var i = 0; i < Turns; i++)
        {
            var row = rows[$"g{i}"];
            Assert.Equal(1, row.Version);
            // The grain that had moved keeps the other writer's state, and its turn's reminder was not written either.
            Assert.Equal(i == moved ? [1] : new byte[] { (byte)i, 2 }, row.Payload);
            Assert.Equal(i == moved ? null : now + 60_000 + i, row.Due);
        }
        Assert.Contains(rows.Values.GroupBy(r => r.Transaction), t => t.Count() > 1); // some were written in one transaction
    }

    /// <summary>
    /// Writes of a row that a group may send as one statement at the end of its batch must keep their order when another
    /// write of the group names the same row: a reminder one turn registers and a later turn of the group removes is gone.
    /// </summary>
    [Fact]
    public async Task A_reminder_registered_by_one_turn_and_removed_by_the_next_in_the_same_group_stays_removed()
    {
        await using var store = await StoreWithTakenKeyAsync();
        ((PostgresStore)store).CommitJoinWait = TimeSpan.FromSeconds(20);
        var grain = new GrainId("probe", "deadlines");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        Task<Exception?>? removal = null;
        await using (var tx = await store.BeginTurnAsync())
        {
            ReminderTable.Upsert(tx, grain, "ttl", now + 60_000, 0);
            ReminderTable.Upsert(tx, grain, "sla", now + 30_000, 0);
            tx.OnCommittedOrJoined(() => { }, join =>
            {
                removal = StartJoinedTurn(store, join, r =>
                {
                    ReminderTable.Delete(r, grain, "ttl");
                    ReminderTable.Upsert(r, new GrainId("probe", "other"), "ttl", now + 90_000, 0);
                });
                return true;
            });
            await tx.CommitAsync();
        }

        Assert.Null(await removal!.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(["sla"], (await store.Reminders.ListAsync(grain)).Select(r => r.Name));
        Assert.Equal(now + 90_000, Assert.Single(await store.Reminders.ListAsync(new GrainId("probe", "other"))).DueAt);
    }

    /// <summary>
    /// Unchecked removals of reminders by turns that commit together are sent as one statement (012); each turn's removal
    /// must still be all or nothing with the rest of its turn, and the statement must remove exactly the rows named.
    /// </summary>
    [Fact]
    public async Task Reminders_removed_by_turns_committed_at_once_are_gone_except_those_of_a_turn_that_failed()
    {
        await using var store = await StoreWithTakenKeyAsync();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        GrainId Grain(int i) => new("probe", $"g{i}");
        await using (var setup = await store.BeginTurnAsync())
        {
            for (var i = 0; i < Turns; i++)
            {
                ReminderTable.Upsert(setup, Grain(i), "ttl", now + 60_000, 0);
                ReminderTable.Upsert(setup, Grain(i), "sla", now + 30_000, 0);
            }
            await setup.CommitAsync();
        }

        var outcomes = await CommitAtOnceAsync(store, (tx, i) =>
        {
            ReminderTable.Delete(tx, Grain(i), "ttl");
            ReminderTable.Delete(tx, Grain(i), "never-registered");
            ClaimKey(tx, i == CheckFails ? "taken" : $"k{i}", $"w{i}");
        });

        Assert.IsType<KeyTakenException>(outcomes[CheckFails]);
        Assert.All(outcomes.Where((_, i) => i != CheckFails), Assert.Null);
        for (var i = 0; i < Turns; i++)
            Assert.Equal(i == CheckFails ? ["sla", "ttl"] : ["sla"], (await store.Reminders.ListAsync(Grain(i))).Select(r => r.Name));
    }

    /// <summary>
    /// What lets a job's process start while its hand-off is still being made durable: a turn's OnWritesChecked action
    /// runs once the server has applied and checked every write of its group, before the COMMIT has finished, and never
    /// for a turn whose writes fail.
    /// </summary>
    [Fact]
    public async Task A_turns_writes_checked_action_runs_before_its_commit_finishes_and_never_for_a_turn_whose_writes_fail()
    {
        await using var store = await StoreWithTakenKeyAsync();
        // At COMMIT, a deferred trigger waits for an advisory lock that this test holds: no commit can finish until it lets go.
        await using var holder = await store.OpenConnectionAsync();
        await ExecuteAsync(holder, """
            CREATE FUNCTION wait_for_the_test() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON idempotency_keys DEFERRABLE INITIALLY DEFERRED
               FOR EACH ROW EXECUTE FUNCTION wait_for_the_test();
            SELECT pg_advisory_lock(4242);
            """);
        var checkedTurns = new bool[Turns];
        var committedTurns = new bool[Turns];
        var abandonedTurns = new bool[Turns];
        const int fails = 3;

        var outcomes = CommitAtOnceAsync(store, (tx, i) =>
        {
            ClaimKey(tx, i == fails ? "taken" : $"k{i}", $"w{i}");
            tx.OnWritesChecked(() => Volatile.Write(ref checkedTurns[i], true));
            tx.OnCommitted(() => committedTurns[i] = true);
            tx.OnAbandoned(() => abandonedTurns[i] = true);
        });

        // The first group's turns are checked while their COMMIT waits for the lock.
        await Eventually.UntilAsync(() => Task.FromResult(Enumerable.Range(0, Turns).Count(i => Volatile.Read(ref checkedTurns[i]))), n => n > 0, TimeSpan.FromSeconds(20), "a turn's writes checked");
        Assert.False(outcomes.IsCompleted);
        Assert.DoesNotContain(true, committedTurns);

        await ExecuteAsync(holder, "SELECT pg_advisory_unlock(4242)");
        var failures = await outcomes.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.IsType<KeyTakenException>(failures[fails]);
        Assert.All(failures.Where((_, i) => i != fails), Assert.Null);
        Assert.Equal(Enumerable.Range(0, Turns).Select(i => i != fails), checkedTurns);
        Assert.Equal(Enumerable.Range(0, Turns).Select(i => i != fails), committedTurns);
        Assert.Equal(Enumerable.Range(0, Turns).Select(i => i == fails), abandonedTurns);
    }

    /// <summary>
    /// The other side of running work ahead of the flush: a COMMIT can still fail after every write held (here a deferred
    /// trigger raises). The turn then fails, its OnAbandoned actions run (what started is undone), and nothing is written.
    /// </summary>
    [Fact]
    public async Task A_turn_whose_commit_fails_after_its_writes_were_checked_fails_and_is_abandoned_with_nothing_written()
    {
        await using var store = await StoreWithTakenKeyAsync();
        await using (var setup = await store.OpenConnectionAsync())
            await ExecuteAsync(setup, """
                CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'doomed at commit'; END $$;
                CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON idempotency_keys DEFERRABLE INITIALLY DEFERRED
                   FOR EACH ROW WHEN (NEW.key LIKE 'doomed%') EXECUTE FUNCTION refuse_doomed();
                """);
        var (wasChecked, committed, abandoned) = (false, false, false);

        var failure = await FailureOfAsync(async () =>
        {
            await using var tx = await store.BeginTurnAsync();
            ClaimKey(tx, "doomed", "w");
            store.Events.AppendDeferred(tx, [WantCreate("w", "p/1")]);
            tx.OnWritesChecked(() => wasChecked = true);
            tx.OnCommitted(() => committed = true);
            tx.OnAbandoned(() => abandoned = true);
            await tx.CommitAsync();
        });

        Assert.Contains("doomed at commit", Assert.IsType<PostgresException>(failure).MessageText);
        Assert.True(wasChecked, "its writes held until the COMMIT");
        Assert.False(committed);
        Assert.True(abandoned);
        Assert.Empty((await store.Events.ListAsync(new EventFilter())).Events);
    }

    private static async Task ExecuteAsync(System.Data.Common.DbConnection connection, string sql)
    {
        await using var command = Sql.Command(connection, null, sql);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>A turn joined to its sender's commit, as a message's delivery is, that writes what <paramref name="write"/> defers; its failure, if any.</summary>
    private static Task<Exception?> StartJoinedTurn(IDataStore store, CommitJoin join, Action<StoreTransaction> write)
    {
        var turn = join.Expect();
        return Task.Run(() => FailureOfAsync(async () =>
        {
            await using var r = await store.BeginTurnAsync();
            r.JoinAs(turn);
            write(r);
            await r.CommitAsync();
        }));
    }

    /// <summary><see cref="Turns"/> turns committed at once, turn i writing what <paramref name="write"/> defers; each one's failure, if any.</summary>
    private static Task<Exception?[]> CommitAtOnceAsync(IDataStore store, Action<StoreTransaction, int> write) =>
        Task.WhenAll(Enumerable.Range(0, Turns).Select(i => FailureOfAsync(async () =>
        {
            await using var tx = await store.BeginTurnAsync();
            write(tx, i);
            await tx.CommitAsync();
        })));

    private static async Task<Exception?> FailureOfAsync(Func<Task> action)
    {
        try
        {
            await action();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }
}
