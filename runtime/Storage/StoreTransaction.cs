using System.Data;
using System.Data.Common;
using System.Globalization;
using Npgsql;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// A caller-owned database transaction. Every storage contract writes through one of these, so that a
/// grain turn's state, events, reminders and job runs commit together or not at all. Work that must only
/// happen after the data is durable (waking followers, in-process delivery) is registered with
/// <see cref="OnCommitted"/> and runs only if the commit succeeds.
/// <para>
/// Writes whose only answer is a row count are <em>deferred</em> (<see cref="Defer"/>): held until the next
/// statement that needs an answer, or the commit, and then sent together. On PostgreSQL they go as one
/// batch, checked on the server (a wrong row count raises and aborts the whole transaction). A transaction
/// begun with <see cref="IDataStore.BeginTurnAsync"/> that never needs an answer holds no connection and is
/// committed by the store's <see cref="Postgres.GroupCommit"/>: its batch joins those of the turns committing
/// at the same moment, in one implicit transaction and one round trip.
/// </para>
/// </summary>
public sealed class StoreTransaction : IAsyncDisposable
{
    /// <summary>SQLSTATE raised by the check functions of migration 005 (see 005_deferred_checks.sql).</summary>
    internal const string CheckFailedState = "DB001";

    private readonly Func<ValueTask>? _release;
    private readonly List<DeferredWrite> _deferred = [];
    private readonly Postgres.GroupCommit? _groupCommit;
    private DbConnection? _connection;
    private DbTransaction? _transaction;
    private List<Action>? _afterCommit;
    private List<Action>? _abandoned;
    private List<Action>? _checked;
    private int _checkedRan;
    private List<Exception>? _callbackErrors;
    private List<(Action AfterCommit, Func<CommitJoin, bool> TryJoin)>? _joinable;
    private JoinedTurn? _joining;
    private bool _finished;
    private bool _disposed;

    internal StoreTransaction(DbConnection connection, DbTransaction? transaction, Func<ValueTask>? release = null)
    {
        _connection = connection;
        _transaction = transaction;
        _release = release;
        IsPostgres = connection is NpgsqlConnection;
    }

    /// <summary>A PostgreSQL turn: no connection until a statement needs an answer; otherwise committed by <paramref name="groupCommit"/>.</summary>
    internal StoreTransaction(Postgres.GroupCommit groupCommit)
    {
        _groupCommit = groupCommit;
        IsPostgres = true;
    }

    internal bool IsPostgres { get; }

    /// <summary>The connection. A turn's transaction has one only once it has flushed (<see cref="FlushAsync"/>) or locked.</summary>
    public DbConnection Connection => _connection
        ?? throw new InvalidOperationException("This turn's transaction has no connection yet; call FlushAsync before a statement that runs at once.");

    /// <summary>Takes a connection if the turn has none yet, and starts the explicit transaction on it.</summary>
    private async ValueTask BeginExplicitAsync(CancellationToken cancellationToken)
    {
        if (_connection is null && _joining is { Speculating: true }) throw new CommitJoinDeclinedException("run a statement that needs an answer");
        _connection ??= await _groupCommit!.OpenConnectionAsync(cancellationToken);
        _ = Transaction;
    }

    /// <summary>The deferred writes, handed over to be sent (and no longer held here).</summary>
    private List<DeferredWrite> TakeDeferred()
    {
        var statements = _deferred.ToList();
        _deferred.Clear();
        return statements;
    }

    /// <summary>
    /// The explicit transaction. A pipelined PostgreSQL transaction starts one here, the first time a statement
    /// needs an answer (Npgsql sends BEGIN with that statement, so this costs no round trip).
    /// </summary>
    public DbTransaction Transaction => _transaction ??= Connection.BeginTransaction(IsolationLevel.ReadCommitted);

    /// <summary>Events appended so far in this transaction (PostgreSQL numbers them within the transaction).</summary>
    internal int EventsAppended { get; set; }

    public bool IsCommitted { get; private set; }

    public void OnCommitted(Action action) => (_afterCommit ??= []).Add(action);

    /// <summary>
    /// Work for after the commit that may instead start ahead of it, joined to it (<see cref="CommitJoin"/>): when this
    /// is a turn committed by the group commit, <paramref name="tryJoin"/> is offered the join just before the batch
    /// leaves; if it declines (false), or the transaction commits any other way, <paramref name="afterCommit"/> runs
    /// after the commit as <see cref="OnCommitted"/> would run it.
    /// </summary>
    public void OnCommittedOrJoined(Action afterCommit, Func<CommitJoin, bool> tryJoin) => (_joinable ??= []).Add((afterCommit, tryJoin));

    /// <summary>This is the transaction of a turn run ahead of its message's commit: it commits in its sender's group, or after it.</summary>
    public void JoinAs(JoinedTurn turn) => _joining = turn;

    /// <summary>
    /// Runs <paramref name="action"/> once every write of the transaction has been applied and checked on the server and
    /// only the commit itself (its WAL flush) is left: on a PostgreSQL turn committed by the group commit, while that
    /// flush is still on its way; otherwise just after the commit. It never runs for a transaction whose writes failed,
    /// but the commit may still fail after it (the server or the connection lost at that moment): whatever it starts
    /// must be undone by an <see cref="OnAbandoned"/> action, and confirmed by an <see cref="OnCommitted"/> one.
    /// </summary>
    public void OnWritesChecked(Action action) => (_checked ??= []).Add(action);

    /// <summary>The <see cref="OnWritesChecked"/> actions, once (null when there are none): a failing one is reported with the commit.</summary>
    private Action? WritesChecked => _checked is null ? null : RunChecked;

    private void RunChecked()
    {
        if (_checked is null || Interlocked.Exchange(ref _checkedRan, 1) != 0) return;
        foreach (var action in _checked)
        {
            try { action(); }
            catch (Exception e) { (_callbackErrors ??= []).Add(e); } // one runner only (above); read after the commit
        }
    }

    /// <summary>Runs <paramref name="action"/> when the transaction is disposed without having committed (rolled back, or failed).</summary>
    public void OnAbandoned(Action action) => (_abandoned ??= []).Add(action);

    /// <summary>A command to run now. Deferred writes must have been sent first (<see cref="FlushAsync"/>), so order holds.</summary>
    public DbCommand CreateCommand(string sql)
    {
        if (_deferred.Count > 0)
            throw new InvalidOperationException("This transaction holds deferred writes; call FlushAsync before a statement that runs at once.");
        var command = Connection.CreateCommand();
        command.Transaction = Transaction;
        command.CommandText = sql;
        return command;
    }

    /// <summary>A write sent with the next flush or the commit. Parameters are positional ($1, $2, …).</summary>
    public void Defer(string sql, params object?[] args) => _deferred.Add(new DeferredWrite(sql, args, null, null, null));

    /// <summary>
    /// A deferred write that must affect exactly <paramref name="rows"/> rows; otherwise the transaction fails
    /// with <paramref name="failure"/>'s exception (on PostgreSQL the check runs on the server, so nothing
    /// after it in the batch is applied).
    /// </summary>
    public void DeferExpecting(int rows, Func<Exception> failure, string sql, params object?[] args) =>
        _deferred.Add(new DeferredWrite(sql, args, rows, failure, null));

    /// <summary>
    /// PostgreSQL: a deferred call of a function that raises SQLSTATE DB001 with the tag it is given as its last
    /// argument (appended here) when its condition fails; the transaction then fails with <paramref name="failure"/>'s exception.
    /// </summary>
    public void DeferCheck(Func<Exception> failure, string sql, params object?[] args) =>
        _deferred.Add(new DeferredWrite(sql, args, -1, failure, null));

    /// <summary>
    /// Puts <paramref name="replacement"/> in the place of <paramref name="pending"/> if that is still held here (not yet
    /// sent by a flush); false otherwise.
    /// </summary>
    internal bool TryReplaceDeferred(DeferredWrite pending, DeferredWrite replacement)
    {
        var at = _deferred.FindIndex(d => ReferenceEquals(d, pending));
        if (at < 0) return false;
        _deferred[at] = replacement;
        return true;
    }

    /// <summary>
    /// PostgreSQL: a deferred write of events whose argument <paramref name="offsetArg"/> (a bigint, 0 here) is added
    /// to their positions within the transaction. A group commit may put the same write of its turns into one statement
    /// with <paramref name="merge"/>, given each write with the shift of its turn's positions.
    /// </summary>
    internal void DeferPositioned(int offsetArg, MergeWrites? merge, string sql, params object?[] args) =>
        _deferred.Add(new DeferredWrite(sql, args, null, null, null, offsetArg, merge));

    /// <summary>
    /// A deferred single-row insert or upsert of <paramref name="row"/> (a name unique to the row, such as its table and
    /// key), which a PostgreSQL group commit may send with the same insert of its other turns as one statement.
    /// </summary>
    public void Defer(MergeableWrite insert, string? row, params object?[] args) =>
        _deferred.Add(new DeferredWrite(insert.Sql, args, null, null, null, Merge: insert.Merge, Row: row));

    /// <summary>
    /// A deferred write built by the storage contract that runs it (one that carries more than its statement, or that
    /// it may replace until it is sent: <see cref="TryReplaceDeferred"/>).
    /// </summary>
    internal void Defer(DeferredWrite write) => _deferred.Add(write);

    /// <summary>Deferred work that is not one statement (it runs in order at the flush, after the statements before it).</summary>
    public void Defer(Func<StoreTransaction, CancellationToken, Task> write) => _deferred.Add(new DeferredWrite("", [], null, null, write));

    /// <summary>Sends the deferred writes now, inside the explicit transaction (which this starts if need be).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        await BeginExplicitAsync(cancellationToken);
        await SendDeferredAsync(cancellationToken);
    }

    private async Task SendDeferredAsync(CancellationToken cancellationToken)
    {
        while (_deferred.Count > 0)
        {
            // Statements up to the next piece of work run as one batch; the work then runs on its own.
            var statements = _deferred.TakeWhile(d => d.Work is null).ToList();
            _deferred.RemoveRange(0, statements.Count);
            if (statements.Count > 0)
            {
                if (IsPostgres) await SendBatchAsync(statements, commit: false, cancellationToken);
                else await SendOneByOneAsync(statements, cancellationToken);
            }
            if (_deferred.Count > 0 && _deferred[0].Work is { } work)
            {
                // The work runs its statements at once; what was deferred after it waits, behind anything it defers.
                var after = _deferred.Skip(1).ToList();
                _deferred.Clear();
                await work(this, cancellationToken);
                _deferred.AddRange(after);
            }
        }
    }

    /// <summary>
    /// The statements as one batch in the explicit transaction; with <paramref name="commit"/>, followed by its
    /// <c>COMMIT</c> in the same round trip. Npgsql follows the transaction's end from the server's answer, so the
    /// transaction object needs no commit of its own; a failed statement aborts the transaction before the
    /// <c>COMMIT</c> runs, and disposal then rolls it back.
    /// </summary>
    private async Task SendBatchAsync(List<DeferredWrite> statements, bool commit, CancellationToken cancellationToken)
    {
        await using var batch = DeferredBatch((NpgsqlConnection)Connection, (NpgsqlTransaction?)_transaction, statements);
        if (commit) batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        try
        {
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e) when (CheckFailure(e, statements) is { } failure)
        {
            throw failure;
        }
    }

    /// <summary>The deferred statements as one batch, each check wrapped so that it raises with its position as tag.</summary>
    internal static NpgsqlBatch DeferredBatch(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<DeferredWrite> statements)
    {
        var batch = new NpgsqlBatch(connection, transaction);
        for (var tag = 0; tag < statements.Count; tag++)
        {
            var d = statements[tag];
            var sql = d.Sql;
            var parameters = d.Args.ToList();
            if (d.ExpectedRows is >= 0)
            {
                parameters.Add((long)d.ExpectedRows.Value);
                parameters.Add(tag);
                sql = $"WITH w AS ({sql} RETURNING 1) SELECT databuild_expect_rows((SELECT count(*) FROM w), ${parameters.Count - 1}, ${parameters.Count})";
            }
            else if (d.ExpectedRows is not null)
                parameters.Add(tag);
            batch.BatchCommands.Add(BatchCommand(sql, parameters));
        }
        return batch;
    }

    /// <summary>The exception a failed deferred check stands for, if <paramref name="e"/> is one.</summary>
    internal static Exception? CheckFailure(PostgresException e, IReadOnlyList<DeferredWrite> statements) =>
        CheckTag(e) is { } tag && tag < statements.Count && statements[tag].Failure is { } failure ? failure() : null;

    /// <summary>The tag (the statement's position in its batch) of a failed deferred check, if <paramref name="e"/> is one.</summary>
    internal static int? CheckTag(PostgresException e) =>
        e.SqlState == CheckFailedState && int.TryParse(e.Hint, NumberStyles.None, CultureInfo.InvariantCulture, out var tag) ? tag : null;

    private static NpgsqlBatchCommand BatchCommand(string sql, IEnumerable<object?> args)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in args)
            // A typed parameter is cloned: a group commit that sends a batch again must not share one between batches.
            command.Parameters.Add(value is NpgsqlParameter typed ? typed.Clone() : Sql.Bind(new NpgsqlParameter(), value));
        return command;
    }

    /// <summary>
    /// PostgreSQL, at once: takes the transaction-scoped advisory lock <paramref name="lockKey"/> and runs the
    /// query <paramref name="sql"/>, in one round trip with the deferred writes before them. The query is its own
    /// statement, so its snapshot is taken after the lock is granted and it sees the previous holder's commit.
    /// </summary>
    public async Task<T> LockThenQueryAsync<T>(long lockKey, Func<DbDataReader, Task<T>> read, CancellationToken cancellationToken, string sql, params object?[] args)
    {
        await BeginExplicitAsync(cancellationToken); // the lock is held to the commit of an explicit transaction
        if (_deferred.Any(d => d.Work is not null)) await SendDeferredAsync(cancellationToken);
        var statements = TakeDeferred();
        await using var batch = DeferredBatch((NpgsqlConnection)Connection, (NpgsqlTransaction?)_transaction, statements);
        batch.BatchCommands.Add(BatchCommand($"SELECT pg_advisory_xact_lock($1)::text AS {LockColumn}", [lockKey]));
        batch.BatchCommands.Add(BatchCommand(sql, args));
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            // The deferred checks before the lock return result sets of their own: skip past the lock's.
            while (reader.FieldCount != 1 || reader.GetName(0) != LockColumn)
                if (!await reader.NextResultAsync(cancellationToken)) throw new InvalidOperationException("The lock's result is missing from the batch.");
            await reader.NextResultAsync(cancellationToken);
            return await read(reader);
        }
        catch (PostgresException e) when (CheckFailure(e, statements) is { } failure)
        {
            throw failure;
        }
    }

    private const string LockColumn = "databuild_lock";

    private async Task SendOneByOneAsync(List<DeferredWrite> statements, CancellationToken cancellationToken)
    {
        foreach (var d in statements)
        {
            await using var command = Sql.Command(Connection, Transaction, d.Sql, d.Args);
            var rows = await command.ExecuteNonQueryAsync(cancellationToken);
            if (d.ExpectedRows is { } expected && expected >= 0 && rows != expected) throw d.Failure!();
        }
    }

    public async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        if (_finished) throw new InvalidOperationException("The transaction has already finished.");
        var statementsOnly = !_deferred.Any(d => d.Work is not null);
        if (_connection is null && _groupCommit is not null && statementsOnly)
        {
            // Nothing needed an answer: the deferred batch is the whole transaction, committed with whatever
            // other turns commit at the same moment (one implicit transaction, atomic for each of them).
            var statements = TakeDeferred();
            var turn = new Postgres.GroupCommit.Turn(statements, EventsAppended, cancellationToken, WritesChecked);
            if (_joining is not null) await _joining.CommitAsync(_groupCommit, turn);
            else if (_joinable is not null) await CommitWithJoinedAsync(turn);
            else if (statements.Count > 0) await _groupCommit.CommitAsync(turn);
        }
        else if (IsPostgres && statementsOnly)
        {
            await BeginExplicitAsync(cancellationToken);
            await SendBatchAsync(TakeDeferred(), commit: true, cancellationToken); // the last writes and the COMMIT in one round trip
        }
        else
        {
            await FlushAsync(cancellationToken); // inside the explicit transaction, which this starts if need be
            await Transaction.CommitAsync(cancellationToken);
        }
        if (_joinable is not null)
            foreach (var (afterCommit, _) in _joinable) OnCommitted(afterCommit); // not offered a join: after the commit
        _finished = true;
        IsCommitted = true;
        RunChecked(); // if the commit did not run them ahead of its flush
        var errors = _callbackErrors;
        foreach (var action in _afterCommit ?? [])
        {
            try { action(); }
            catch (Exception e) { (errors ??= []).Add(e); }
        }
        // The data is committed whatever a callback does; surface callback bugs without pretending the commit failed.
        if (errors is not null) throw new AggregateException("Committed, but an after-commit action failed.", errors);
    }

    /// <summary>
    /// The group-commit path of a turn whose messages may join it: their turns start now, and their batches go in the
    /// same group right behind this one's. Messages not joined are delivered after the commit, as before.
    /// </summary>
    private async Task CommitWithJoinedAsync(Postgres.GroupCommit.Turn turn)
    {
        var join = new CommitJoin();
        var committed = false;
        List<CommitJoin.Joiner>? joiners = null;
        try
        {
            foreach (var (afterCommit, tryJoin) in _joinable!)
                if (!tryJoin(join)) OnCommitted(afterCommit);
            _joinable = null;
            joiners = await join.GatherAsync(_groupCommit!.JoinWait);
            var turns = new List<Postgres.GroupCommit.Turn> { turn };
            turns.AddRange(joiners.Select(j => j.Turn));
            var commits = _groupCommit!.CommitTogether(turns);
            for (var i = 0; i < joiners.Count; i++) joiners[i].Follow(commits[i + 1]);
            joiners = null; // each now follows its own commit
            await commits[0];
            committed = true;
        }
        finally
        {
            // A joined turn never left behind: if this failed before the group was sent, so do the turns that joined it.
            if (joiners is not null)
                foreach (var joiner in joiners) joiner.Done.TrySetException(new CommitJoinDeclinedException("commit without its message"));
            join.SenderFinished(committed);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_finished && _transaction is not null)
            {
                _finished = true;
                try { await _transaction.RollbackAsync(); }
                catch (Exception) when (_connection?.State != ConnectionState.Open) { /* connection gone: nothing committed */ }
            }
            if (_transaction is not null) await _transaction.DisposeAsync();
            if (_connection is not null) await _connection.DisposeAsync();
        }
        finally
        {
            if (!IsCommitted && _abandoned is not null)
                foreach (var action in _abandoned) action();
            if (_release is not null) await _release();
        }
    }

    /// <summary>
    /// ExpectedRows: null no check, ≥ 0 a row count, -1 a raising function call. OffsetArg: the argument (a bigint)
    /// added to event positions within the transaction, which a group commit sets to move a turn past the turns before it.
    /// Merge: makes one statement of this write and the same write of other turns (<see cref="DeferPositioned"/>).
    /// Reminder: the reminder row the write changes, and how (a group commit may fold a message's sending and its
    /// delivery into one statement: <see cref="ReminderTable.FoldDeliveredMessages"/>).
    /// Row: the row the write changes or checks, if a group commit must know it (a write is merged only when no other
    /// write of the group names its row: <see cref="MergeableWrite"/>).
    /// </summary>
    internal sealed record DeferredWrite(string Sql, object?[] Args, int? ExpectedRows, Func<Exception>? Failure,
        Func<StoreTransaction, CancellationToken, Task>? Work, int? OffsetArg = null, MergeWrites? Merge = null,
        ReminderTable.RowWrite? Reminder = null, string? Row = null);

    /// <summary>One statement for the same write of several turns of a group, each given with the shift of its turn's event positions.</summary>
    internal delegate DeferredWrite MergeWrites(IReadOnlyList<(DeferredWrite Write, long Shift)> parts);
}
