namespace DataBuild.Runtime.Storage;

/// <summary>
/// The turns of a PostgreSQL turn's messages that run before that turn (the sender) has committed, and commit in
/// its group, right behind it: one commit for a message and its effect instead of two in sequence.
/// <para>
/// Nothing here is taken on trust. A joined turn completes its message's row, fenced by the row's version, which
/// only the sender writes: its batch can only succeed in the sender's transaction or after the sender's commit,
/// never without it. A joined turn may not read the database or call another grain (it would see the world
/// before its message), so such a turn is declined (<see cref="CommitJoinDeclinedException"/>) and its message is
/// delivered as any other once the sender has committed.
/// </para>
/// </summary>
public sealed class CommitJoin
{
    private readonly Lock _gate = new();
    private readonly List<Joiner> _joined = [];
    private readonly TaskCompletionSource _allArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<bool> _sender = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _expected;
    private bool _closed;

    /// <summary>Completes with whether the sender committed.</summary>
    public Task<bool> SenderCommitted => _sender.Task;

    /// <summary>A joined turn is about to run.</summary>
    public JoinedTurn Expect()
    {
        lock (_gate) _expected++;
        return new JoinedTurn(this);
    }

    /// <summary>Takes a joined turn's batch into the sender's group; false once the sender has left without it.</summary>
    internal bool TryAdd(JoinedTurn turn, Joiner joiner)
    {
        lock (_gate)
        {
            if (_closed || !turn.MarkArrived()) return false;
            _joined.Add(joiner);
            Arrived();
            return true;
        }
    }

    /// <summary>A joined turn that will not join (it failed or was declined before its commit).</summary>
    internal void Withdraw(JoinedTurn turn)
    {
        lock (_gate)
        {
            if (!turn.MarkArrived()) return;
            Arrived();
        }
    }

    private void Arrived()
    {
        if (--_expected == 0) _allArrived.TrySetResult();
    }

    /// <summary>The sender: waits (at most <paramref name="wait"/>) for the joined turns, then closes the join to newcomers.</summary>
    internal async Task<List<Joiner>> GatherAsync(TimeSpan wait)
    {
        bool waiting;
        lock (_gate) waiting = _expected > 0;
        if (waiting) await Task.WhenAny(_allArrived.Task, Task.Delay(wait));
        lock (_gate)
        {
            _closed = true;
            return [.. _joined];
        }
    }

    internal void SenderFinished(bool committed) => _sender.TrySetResult(committed);

    /// <summary>A joined turn's batch; <see cref="Done"/> completes when the group it went in has committed or failed.</summary>
    internal sealed class Joiner(Postgres.GroupCommit.Turn turn)
    {
        public Postgres.GroupCommit.Turn Turn { get; } = turn;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Follow(Task commit) => commit.ContinueWith(t =>
        {
            if (t.IsCanceled) Done.TrySetCanceled();
            else if (t.Exception is { } e) Done.TrySetException(e.InnerExceptions);
            else Done.TrySetResult();
        }, TaskScheduler.Default);
    }
}

/// <summary>One turn run ahead of its message's commit (see <see cref="CommitJoin"/>); flows with the turn.</summary>
public sealed class JoinedTurn
{
    private static readonly AsyncLocal<JoinedTurn?> Running = new();
    private int _arrived;

    internal JoinedTurn(CommitJoin join) => Join = join;

    public CommitJoin Join { get; }

    /// <summary>True until the turn's commit is decided: until then its message may not exist.</summary>
    public bool Speculating { get; private set; } = true;

    /// <summary>The joined turn running on this flow, if any.</summary>
    public static JoinedTurn? Current
    {
        get => Running.Value;
        set => Running.Value = value;
    }

    /// <summary>Refuses what a joined turn may not do before its message has committed: <paramref name="what"/>.</summary>
    public static void ThrowIfSpeculating(string what)
    {
        if (Running.Value is { Speculating: true }) throw new CommitJoinDeclinedException(what);
    }

    internal bool MarkArrived() => Interlocked.Exchange(ref _arrived, 1) == 0;

    public void Withdraw() => Join.Withdraw(this);

    public void Decided() => Speculating = false;

    /// <summary>
    /// Commits the turn's batch in its sender's group, behind the sender; or, when the sender has already left, after
    /// the sender's commit (and not at all if the sender failed: the message this turn delivers does not exist).
    /// </summary>
    internal async Task CommitAsync(Postgres.GroupCommit groupCommit, Postgres.GroupCommit.Turn turn)
    {
        try
        {
            var joiner = new CommitJoin.Joiner(turn);
            if (Join.TryAdd(this, joiner))
            {
                await joiner.Done.Task;
                return;
            }
            if (!await Join.SenderCommitted) throw new CommitJoinDeclinedException("its message was not committed");
            await groupCommit.CommitAsync(turn);
        }
        finally
        {
            Decided();
        }
    }
}

/// <summary>A joined turn tried what it may only do once its message has committed; the message is delivered normally instead.</summary>
public sealed class CommitJoinDeclinedException(string what)
    : Exception($"A turn run ahead of its message's commit cannot {what}; it runs again once the message has committed.");
