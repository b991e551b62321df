using System.Diagnostics;
using DataBuild.Runtime.Telemetry;
using Npgsql;
using DeferredWrite = DataBuild.Runtime.Storage.StoreTransaction.DeferredWrite;

namespace DataBuild.Runtime.Storage.Postgres;

/// <summary>
/// Group commit of one-round-trip grain turns. A turn whose writes needed no answer hands its batch here; the
/// batches of every turn that commits while an earlier group is on its way are sent together, as one implicit
/// transaction in one round trip: one commit and one WAL flush for the group instead of one per turn.
/// <para>
/// Each turn is still all or nothing. When a statement of the group fails (a fence that finds a moved version,
/// a taken idempotency key, a constraint), the server names it (the check's tag or the failing batch command);
/// the others are sent again without its turn, in a new transaction, and then its turn is sent again on its own:
/// it may have failed only because of a turn before it in the same group, and a turn must never learn that a key
/// is taken before the turn that took it has committed. Alone, its failure is its own. An error that names no
/// statement (the connection broke) fails every turn of the group, as it would have failed each alone.
/// </para>
/// <para>
/// Event positions are numbered per turn from 0; in a group each turn's are shifted past those of the turns
/// before it, so that the indexes stay unique within the shared transaction (see 001_event_log.sql).
/// </para>
/// </summary>
internal sealed class GroupCommit
{
    /// <summary>Groups on their way at once: one being executed while the next is sent keeps both cores busy.</summary>
    public const int DefaultMaxInFlight = 2;

    // A group stays well inside one transaction's event positions (1 << 16) and a reasonable batch size.
    private const int MaxEventsPerGroup = 1 << 15;
    private const int MaxStatementsPerGroup = 2_000;

    // Transaction-local: it ends with the group's implicit transaction.
    private const string GroupLockTimeout = "SELECT set_config('lock_timeout', '50ms', true)";

    /// <summary>How long a sender's batch waits for the turns of its messages to join it (they take a fraction of a millisecond).</summary>
    public TimeSpan JoinWait { get; set; } = TimeSpan.FromMilliseconds(3);

    private readonly NpgsqlDataSource _dataSource;
    private readonly InFlightBatches<Member> _groups;

    public GroupCommit(NpgsqlDataSource dataSource, int maxInFlight = DefaultMaxInFlight)
    {
        _dataSource = dataSource;
        _groups = new(maxInFlight, TakeGroup, SendAsync, static (member, e) => member.Done.TrySetException(e));
    }

    /// <summary>Connections for turns that need answers before they commit (they run their own explicit transaction).</summary>
    public async Task<System.Data.Common.DbConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>Commits one turn's statements with whatever else is committing; completes when its group has committed.</summary>
    public Task CommitAsync(Turn turn) => CommitTogether([turn])[0];

    /// <summary>
    /// Commits turns queued one right behind the other, so that they normally share a group, in this order (a joined
    /// turn behind its sender: <see cref="CommitJoin"/>). Each is still its own all-or-nothing member; one task each.
    /// </summary>
    public IReadOnlyList<Task> CommitTogether(IReadOnlyList<Turn> turns)
    {
        turns[0].CancellationToken.ThrowIfCancellationRequested();
        var members = turns.Select(t => new Member(t)).ToArray();
        _groups.Enqueue(members);
        return [.. members.Select(m => m.Done.Task)];
    }

    /// <summary>
    /// One turn's batch: its statements and how many events it appends. <paramref name="WritesChecked"/>, if any, runs
    /// once every statement of the turn's group has been applied, while the group's COMMIT is still being flushed; the
    /// commit may still fail after it (see <see cref="StoreTransaction.OnWritesChecked"/>).
    /// </summary>
    public sealed record Turn(IReadOnlyList<DeferredWrite> Statements, int Events, CancellationToken CancellationToken, Action? WritesChecked = null);

    private static List<Member> TakeGroup(Queue<Member> queue)
    {
        var group = new List<Member>();
        int statements = 0, events = 0;
        while (queue.TryPeek(out var next)
               && (group.Count == 0 || (statements + next.Turn.Statements.Count <= MaxStatementsPerGroup && events + next.Turn.Events <= MaxEventsPerGroup)))
        {
            queue.Dequeue();
            group.Add(next);
            statements += next.Turn.Statements.Count;
            events += next.Turn.Events;
        }
        return group;
    }

    private async Task SendAsync(List<Member> group)
    {
        var later = new List<Member>();
        try
        {
            await SendWithoutCulpritsAsync(group, later);
        }
        catch (Exception e)
        {
            foreach (var member in group) member.Done.TrySetException(e);
        }
        // A turn that failed in company may have failed because of a turn before it in the same group (the same
        // idempotency key, the same row): it is decided again after them, against what they committed. Alone,
        // its outcome is its own. Each round takes at least one turn out, so this ends.
        if (later.Count > 0) await SendAsync(later);
    }

    private async Task SendWithoutCulpritsAsync(List<Member> group, List<Member> later)
    {
        var merge = true;
        while (true)
        {
            // A turn abandoned before its group left (its silo is stopping) is not committed.
            foreach (var cancelled in group.Where(m => m.Turn.CancellationToken.IsCancellationRequested).ToList())
            {
                cancelled.Done.TrySetCanceled(cancelled.Turn.CancellationToken);
                group.Remove(cancelled);
            }
            if (group.Count == 0) return;

            var prefixed = group.Count > 1;
            var (statements, owners) = Combine(group, merge && prefixed);
            await using var connection = await _dataSource.OpenConnectionAsync(CancellationToken.None);
            await using var batch = StoreTransaction.DeferredBatch(connection, null, statements);
            // In company, a turn must not wait for a lock (a grain's turn lock held by another silo's locked turn, a
            // row another group is writing): the turns before it in the batch would wait with it, holding their own
            // locks and an event-log transaction id, and a wait that runs through another silo's grain call is a
            // deadlock PostgreSQL cannot see. It fails fast instead (55P03, naming its statement) and is sent again
            // alone after the rest, where it may wait like any single turn.
            if (prefixed) batch.BatchCommands.Insert(0, new NpgsqlBatchCommand(GroupLockTimeout));
            var early = group.Any(m => m.Turn.WritesChecked is not null);
            if (early) AddChecksBarrier(batch);
            var prefix = (prefixed ? 1 : 0) + (early ? 1 : 0);
            var started = Stopwatch.GetTimestamp();
            try
            {
                if (early) await ExecuteWithChecksBarrierAsync(batch, group);
                else await batch.ExecuteNonQueryAsync(CancellationToken.None);
            }
            catch (PostgresException e) when (prefixed && Culprit(e, batch, prefix, owners) is { } culprit)
            {
                if (culprit == Merged)
                {
                    // A statement merged from several turns names none of them: the group goes again unmerged.
                    merge = false;
                    continue;
                }
                // The rest go again without the failing turn, which is tried again after them.
                later.Add(group[culprit]);
                group.RemoveAt(culprit);
                continue;
            }
            catch (PostgresException e) when (group.Count == 1 && StoreTransaction.CheckFailure(e, statements) is { } failure)
            {
                group[0].Done.TrySetException(failure);
                return;
            }
            DataBuildMetrics.CommitGroupCommitted(group.Count, Stopwatch.GetElapsedTime(started));
            foreach (var member in group) member.Done.TrySetResult();
            return;
        }
    }

    private const string ChecksPassedColumn = "databuild_checks_passed";

    /// <summary>
    /// Makes the group's transaction explicit and puts an error barrier (a Sync) before its COMMIT: the server then
    /// answers every statement, and flushes those answers, before it runs the COMMIT and waits for the WAL flush. The
    /// group learns that all its writes held about a WAL flush earlier than it learns that they are durable.
    /// </summary>
    private static void AddChecksBarrier(NpgsqlBatch batch)
    {
        batch.BatchCommands.Insert(0, new NpgsqlBatchCommand("BEGIN"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT true AS {ChecksPassedColumn}") { AppendErrorBarrier = true });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
    }

    /// <summary>
    /// Runs a batch built with <see cref="AddChecksBarrier"/>: once the barrier's answer arrives (every statement before it
    /// succeeded; a failure throws first, and the COMMIT behind it then ends the aborted transaction as a ROLLBACK), each
    /// member's <see cref="Member.WritesChecked"/> runs; then the COMMIT's answer is awaited.
    /// </summary>
    private static async Task ExecuteWithChecksBarrierAsync(NpgsqlBatch batch, List<Member> group)
    {
        await using var reader = await batch.ExecuteReaderAsync(CancellationToken.None);
        while (reader.FieldCount != 1 || reader.GetName(0) != ChecksPassedColumn)
            if (!await reader.NextResultAsync(CancellationToken.None)) throw new InvalidOperationException("The checks barrier's result is missing from the batch.");
        foreach (var member in group) member.Turn.WritesChecked?.Invoke(); // (StoreTransaction's wrapper keeps an action's failure for its commit)
        while (await reader.NextResultAsync(CancellationToken.None)) { } // the COMMIT's answer: durable, or failed
    }

    /// <summary>The index in the group of the turn whose statement failed, if the server says which one did.</summary>
    private static int? Culprit(PostgresException e, NpgsqlBatch batch, int prefix, List<int> owners)
    {
        if (StoreTransaction.CheckTag(e) is { } tag && tag < owners.Count) return owners[tag];
        // Npgsql names the batch command that raised any other error.
        var at = e.BatchCommand is { } command ? batch.BatchCommands.IndexOf(command) - prefix : -1;
        return at >= 0 && at < owners.Count ? owners[at] : null; // may be Merged
    }

    /// <summary>The owner of a statement merged from several turns' writes.</summary>
    private const int Merged = -1;

    /// <summary>
    /// The group's statements in order, event positions shifted per turn, and for each statement the turn it belongs to
    /// (<see cref="Merged"/>: several). With <paramref name="merge"/>, the writes that can be merged go last, one statement
    /// for each kind: the event inserts (nothing in a transaction reads them back), and the single-row writes of a row no
    /// other write of the group names (<see cref="MergeableWrite"/>, the state writes of grains); and a message sent and
    /// delivered within the group is one statement instead of two (<see cref="ReminderTable.FoldDeliveredMessages"/>).
    /// </summary>
    private static (List<DeferredWrite> Statements, List<int> Owners) Combine(List<Member> group, bool merge)
    {
        var statements = new List<DeferredWrite>();
        var owners = new List<int>();
        var shifts = new List<long>();
        var folds = merge ? ReminderTable.FoldDeliveredMessages(group.SelectMany((m, i) => m.Turn.Statements.Select(w => (i, w)))) : null;
        var shift = 0L;
        for (var i = 0; i < group.Count; i++)
        {
            foreach (var written in group[i].Turn.Statements)
            {
                var statement = written;
                if (folds is not null && folds.TryGetValue(written, out var folded))
                {
                    if (folded is null) continue;
                    statement = folded;
                }
                statements.Add(statement);
                owners.Add(i);
                shifts.Add(shift);
            }
            shift += group[i].Turn.Events;
        }
        if (!merge) return ([.. statements.Select((s, at) => Placed(s, shifts[at]))], owners);

        // A row named by two writes keeps both in their places, in order.
        var rows = statements.Select(RowOf).ToList();
        var named = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var row in rows)
            if (row is not null) named[row] = named.GetValueOrDefault(row) + 1;
        var placed = new List<DeferredWrite>();
        var placedOwners = new List<int>();
        var mergeable = new List<(DeferredWrite Write, long Shift, int Owner)>();
        for (var at = 0; at < statements.Count; at++)
        {
            var statement = statements[at];
            if (statement.Merge is not null && (rows[at] is not { } row || named[row] == 1))
            {
                mergeable.Add((statement, shifts[at], owners[at]));
                continue;
            }
            placed.Add(Placed(statement, shifts[at]));
            placedOwners.Add(owners[at]);
        }
        foreach (var kind in mergeable.GroupBy(m => m.Write.Merge!))
        {
            // A kind with one write is sent as it is, and still names its turn if it fails.
            var parts = kind.ToList();
            placed.Add(parts.Count == 1 ? Placed(parts[0].Write, parts[0].Shift) : kind.Key([.. parts.Select(p => (p.Write, p.Shift))]));
            placedOwners.Add(parts.Count == 1 ? parts[0].Owner : Merged);
        }
        return (placed, placedOwners);
    }

    /// <summary>The row a write changes or checks, for merging: its own, or its reminder's.</summary>
    private static string? RowOf(DeferredWrite write) =>
        write.Row ?? (write.Reminder is { } r ? $"reminders\0{r.Grain.Type}\0{r.Grain.Key}\0{r.Name}" : null);

    private static DeferredWrite Placed(DeferredWrite statement, long shift) =>
        shift == 0 || statement.OffsetArg is not { } at ? statement : Shifted(statement, at, shift);

    private static DeferredWrite Shifted(DeferredWrite statement, int at, long shift)
    {
        var args = (object?[])statement.Args.Clone();
        args[at] = (long)args[at]! + shift;
        return statement with { Args = args };
    }

    /// <summary>A turn waiting in the queue or in a group, and what it is told when its group has committed or failed.</summary>
    private sealed class Member(Turn turn)
    {
        public Turn Turn { get; } = turn;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
