using System.Text.Json;
using DataBuild.Runtime.Storage;
using DataBuild.Runtime.Telemetry;

namespace DataBuild.Runtime.Hosting;

/// <summary>
/// One grain in memory: its instance, its last committed state and version, and a turn gate that lets one
/// turn run at a time (non-reentrant, as Orleans grains are by default).
/// </summary>
internal sealed class GrainActivation(GrainRuntime runtime, GrainId id, Grain instance)
{
    private readonly SemaphoreSlim _turnGate = new(1, 1);
    private long _version;
    private byte[]? _committedPayload;

    public GrainId Id { get; } = id;
    public Grain Instance { get; } = instance;
    public GrainRuntime Runtime { get; } = runtime;
    public TurnContext? CurrentTurn { get; private set; }
    public volatile bool IsDefunct;
    public long LastUsedTimestamp;

    /// <summary>
    /// Set on an activation that replaced one whose state moved underneath it: its turns take the grain's lock
    /// and re-read the state before running. Otherwise turns are optimistic: they run on the activation's
    /// state and the commit's fence (lock + version check, in the same round trip) rejects a stale one.
    /// </summary>
    public bool LockEachTurn { get; set; }

    /// <summary>
    /// Activated without reading its state (assumed new), and no turn's commit has confirmed that yet. A turn that fails
    /// on it leaves the guess unconfirmed, so it is dropped (<see cref="IsDefunct"/>) and the next turn reads.
    /// </summary>
    public bool AssumedNew { get; private set; }

    /// <summary>PostgreSQL, where several silos may hold activations of one grain: turns are fenced or locked.</summary>
    private bool Shared => Persistent is not null && Runtime.LockStatePerTurn;

    private IPersistentGrain? Persistent => Instance as IPersistentGrain;

    /// <summary>Loads the state (unless <paramref name="assumeNew"/>), then runs <c>OnActivateAsync</c> as the activation's first turn.</summary>
    public async Task ActivateAsync(bool assumeNew, CancellationToken cancellationToken)
    {
        Instance.Activation = this;
        if (assumeNew)
        {
            Adopt(null); // version 0, a new state: the first commit's version check confirms it
            AssumedNew = true;
        }
        else if (Persistent is not null)
        {
            // An activation for a turn run ahead of its message's commit (CommitJoin) may still read its own stored
            // state: only this grain's activations write it, and the message's sender is not one of them (this grain
            // was not active here). Its turn may read nothing else.
            var joined = JoinedTurn.Current;
            JoinedTurn.Current = null;
            StoredState? stored;
            try
            {
                stored = await Runtime.Store.GrainStates.ReadAsync(null, Id, forUpdate: false, cancellationToken);
            }
            finally
            {
                JoinedTurn.Current = joined;
            }
            // Derived from rows others may write (a detached turn's): a joined turn cannot read them, and is declined
            // (delivered after its sender's commit) if it would.
            var unstored = stored is null ? await Persistent.UnstoredStateAsync(Runtime.Store, cancellationToken) : null;
            // A derived state stands at version 0 (nothing stored) as the one a failed turn returns to.
            if (unstored is not null) Adopt(0, JsonSerializer.SerializeToUtf8Bytes(unstored, Persistent.StateType, GrainRuntime.StateJson));
            else Adopt(stored);
        }
        await RunTurnAsync(async () => { await Instance.OnActivateAsync(cancellationToken); return true; }, null, cancellationToken);
    }

    /// <summary>Tries to start a turn now; false if one is running (the activation is busy, not idle).</summary>
    public bool TryEnterIdle() => _turnGate.Wait(0);

    public void Exit() => _turnGate.Release();

    /// <summary>Between turns and in use (a hint for whoever would start a turn now).</summary>
    public bool IsIdle => !IsDefunct && _turnGate.CurrentCount > 0;

    public async Task<T> RunTurnAsync<T>(Func<Task<T>> body, ReminderDelivery? delivery, CancellationToken cancellationToken, bool afterRefusal = false)
    {
        await _turnGate.WaitAsync(cancellationToken);
        try
        {
            if (IsDefunct) throw new ActivationDefunctException();
            var turn = new TurnContext { Delivery = delivery, AfterRefusal = afterRefusal };
            CurrentTurn = turn;
            var callerChain = CallChain.Current;
            CallChain.Current = callerChain.Add(Id);
            T result;
            try
            {
                if (Shared && LockEachTurn)
                {
                    // Take the row lock first: activations of this grain on other silos wait, and we see their writes.
                    turn.Transaction = await Runtime.Store.BeginAsync(cancellationToken);
                    var stored = await Runtime.Store.GrainStates.ReadAsync(turn.Transaction, Id, forUpdate: true, cancellationToken);
                    if ((stored?.Version ?? 0) != _version) Adopt(stored);
                }
                result = await body();
                await CommitAsync(turn, cancellationToken);
                if (turn.HasWrites) AssumedNew = false; // its version check held
            }
            catch (Exception e)
            {
                DataBuildMetrics.TurnEnded(Id.Type, e switch { TurnRefusedException => "refused", CommitJoinDeclinedException => "declined", _ => "failed" });
                // Nothing of a failed turn survives: not in the database (rolled back) nor in memory.
                Adopt(_version, _committedPayload);
                if (e is InconsistentStateException stale && stale.Grain == Id) IsDefunct = true; // not for a nested call's conflict
                // Declined (it needed to read), abandoned with its sender, refused: the next turn reads what is stored.
                if (AssumedNew) IsDefunct = true;
                throw;
            }
            finally
            {
                CallChain.Current = callerChain;
                CurrentTurn = null;
                if (turn.Transaction is not null) await turn.Transaction.DisposeAsync();
                LastUsedTimestamp = Runtime.Clock.GetTimestamp();
            }
            // Counted once committed, outside the turn: nothing after the commit may fail the turn.
            DataBuildMetrics.TurnEnded(Id.Type, "committed");
            return result;
        }
        finally
        {
            _turnGate.Release();
        }
    }

    private async Task CommitAsync(TurnContext turn, CancellationToken cancellationToken)
    {
        if (!turn.HasWrites)
        {
            if (turn.Transaction is not null) await turn.Transaction.CommitAsync(cancellationToken); // releases the row lock
            return;
        }
        var store = Runtime.Store;
        // Everything below is deferred: an optimistic turn on PostgreSQL is one round trip unless an enlisted
        // write needs an answer from the database first.
        var tx = turn.Transaction ??= await store.BeginTurnAsync(cancellationToken);
        if (turn.Delivery?.Joined is { } joined) tx.JoinAs(joined);
        var fence = Shared && !LockEachTurn ? GrainStateTable.PlaceFence(tx, Id, _version) : null;
        // Enlisted writes go first, so that what they learn inside the transaction (an id the database chose)
        // can still be recorded in the state written below.
        foreach (var write in turn.Writes) await write(tx, cancellationToken);
        var version = _version;
        var payload = _committedPayload;
        switch (turn.StateWrite)
        {
            case StateWrite.Write:
                payload = JsonSerializer.SerializeToUtf8Bytes(Persistent!.State, Persistent.StateType, GrainRuntime.StateJson);
                var now = Runtime.Clock.GetUtcNow().ToUnixTimeMilliseconds();
                version = fence is null ? GrainStateTable.Write(tx, Id, _version, payload, now) : GrainStateTable.FenceAndWrite(tx, fence, Id, _version, payload, now);
                break;
            case StateWrite.Clear:
                GrainStateTable.Clear(tx, Id, _version);
                version = 0;
                payload = null;
                break;
        }
        if (turn.Delivery is { } delivery)
            ReminderTable.Complete(tx, delivery.Claim, delivery.NextDueAt, () => new StaleReminderClaimException(delivery.Claim));
        Runtime.WriteRemindersEventsAndCallbacks(tx, turn);
        if (turn.Delivery?.NextDueAt is not null) tx.OnCommitted(store.RemindersChanged.Pulse);

        try
        {
            await tx.CommitAsync(cancellationToken);
        }
        finally
        {
            // Committed is committed, even if an after-commit action then failed.
            if (tx.IsCommitted)
            {
                _version = version;
                _committedPayload = payload;
            }
        }
    }

    private void Adopt(StoredState? stored) => Adopt(stored?.Version ?? 0, stored?.Payload);

    private void Adopt(long version, byte[]? payload)
    {
        _version = version;
        _committedPayload = payload;
        if (Persistent is { } p)
            p.State = payload is null ? Activator.CreateInstance(p.StateType)! : JsonSerializer.Deserialize(payload, p.StateType, GrainRuntime.StateJson)!;
    }
}
