using DataBuild.Protos;
using DataBuild.Runtime.Storage;

namespace DataBuild.Runtime.Hosting;

/// <summary>
/// Base class of every grain, mirroring Orleans' <c>Grain</c>. Everything a turn writes (state, events,
/// reminders, enlisted work) is held until the turn's method returns and then committed in one
/// transaction; if the method throws, none of it is written.
/// </summary>
public abstract class Grain
{
    internal GrainActivation Activation { get; set; } = null!;

    public GrainId GrainId => Activation.Id;

    /// <summary>The grain's key (Orleans: <c>this.GetPrimaryKeyString()</c>).</summary>
    public string GrainKey => Activation.Id.Key;

    protected IGrainFactory GrainFactory => Activation.Runtime.GrainFactory;

    protected TimeProvider Clock => Activation.Runtime.Clock;

    public virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public virtual Task OnDeactivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>This turn runs again because the previous run's commit was refused (<see cref="TurnRefusedException"/>).</summary>
    protected bool IsRetryAfterRefusal => Turn.AfterRefusal;

    private TurnContext Turn => Activation.CurrentTurn
        ?? throw new InvalidOperationException($"Grain {GrainId}: state, events and reminders can only be written during a turn.");

    /// <summary>A reminder first due after <paramref name="dueTime"/>, then every <paramref name="period"/> (zero: once).</summary>
    protected Task<IGrainReminder> RegisterOrUpdateReminder(string reminderName, TimeSpan dueTime, TimeSpan period) =>
        RegisterOrUpdateReminder(reminderName, Clock.GetUtcNow() + dueTime, period);

    /// <summary>A reminder due at an absolute instant (deadlines anchored to business time), then every <paramref name="period"/>.</summary>
    protected Task<IGrainReminder> RegisterOrUpdateReminder(string reminderName, DateTimeOffset dueAt, TimeSpan period) =>
        RegisterOrUpdateReminderFor(GrainId, reminderName, dueAt, period);

    /// <summary>
    /// A reminder for another grain, committed with this turn: how a grain hands work to another grain
    /// durably (delivered at least once, after this turn commits, even if this silo dies). A message due now is
    /// normally delivered in this turn's own commit (<see cref="Storage.CommitJoin"/>); with
    /// <paramref name="inSendersCommit"/> false it is delivered after it instead: for a message nothing urgent waits
    /// on, whose turn would only make this commit, and whatever waits on it, later. With <paramref name="targetLikelyNew"/>
    /// (the sender knows the target has most likely never been stored), a target not active here is activated for that
    /// joined turn without reading its state, as <see cref="IGrainFactory.GetNewGrain{TGrainInterface}"/> does: if it was
    /// stored after all, the turn's first commit fails its version check and the turn runs again on the stored state.
    /// </summary>
    protected Task<IGrainReminder> RegisterOrUpdateReminderFor(GrainId target, string reminderName, DateTimeOffset dueAt, TimeSpan period,
        bool inSendersCommit = true, bool targetLikelyNew = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(reminderName);
        if (period < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(period), "A reminder period cannot be negative.");
        Turn.ReminderChanges.Add(new ReminderChange(target, reminderName, dueAt.ToUnixTimeMilliseconds(), (long)period.TotalMilliseconds, inSendersCommit,
            targetLikelyNew));
        return Task.FromResult<IGrainReminder>(new GrainReminder(reminderName));
    }

    protected GrainId IdOf<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey =>
        Activation.Runtime.Types.IdOf<TGrainInterface>(key);

    /// <summary>Withdraws a reminder set for another grain, with this turn (if it has not been delivered yet).</summary>
    protected Task UnregisterReminderFor(GrainId target, string reminderName)
    {
        Turn.ReminderChanges.Add(new ReminderChange(target, reminderName, null, 0));
        return Task.CompletedTask;
    }

    protected Task UnregisterReminder(IGrainReminder reminder)
    {
        Turn.ReminderChanges.Add(new ReminderChange(GrainId, reminder.ReminderName, null, 0));
        return Task.CompletedTask;
    }

    protected async Task<IGrainReminder?> GetReminder(string reminderName) =>
        await Activation.Runtime.Store.Reminders.ReadAsync(GrainId, reminderName) is { } row ? new GrainReminder(row.Name) : null;

    /// <summary>Appends a build event, committed with this turn.</summary>
    protected void AppendEvent(DataBuildEvent e) => Turn.Events.Add(e);

    /// <summary>
    /// Runs <paramref name="write"/> inside this turn's transaction, before the state is written (so it may
    /// still change the state) and before the turn's reminders and events.
    /// </summary>
    protected void EnlistWrite(Func<StoreTransaction, CancellationToken, Task> write) => Turn.Writes.Add(write);

    /// <summary>An enlisted write that only defers statements (<see cref="StoreTransaction.Defer"/>): it costs no round trip of its own.</summary>
    protected void EnlistWrite(Action<StoreTransaction> write) => Turn.Writes.Add((tx, _) => { write(tx); return Task.CompletedTask; });

    /// <summary>Runs <paramref name="action"/> only once this turn has committed (never if it rolls back).</summary>
    protected void AfterCommit(Action action) => Turn.AfterCommit.Add(action);

    /// <summary>This turn's writes as <see cref="ITurnWrites"/>, for code a grain's turn shares with a <see cref="DetachedTurn"/>.</summary>
    protected ITurnWrites ThisTurn => _thisTurn ??= new TurnWrites(this);

    private TurnWrites? _thisTurn;

    private sealed record GrainReminder(string ReminderName) : IGrainReminder;

    private sealed class TurnWrites(Grain grain) : ITurnWrites
    {
        public GrainId IdOf<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey => grain.IdOf<TGrainInterface>(key);

        public void AppendEvent(DataBuildEvent e) => grain.AppendEvent(e);

        public void RemindOnce(GrainId target, string name, DateTimeOffset dueAt, bool targetLikelyNew = false) =>
            grain.RegisterOrUpdateReminderFor(target, name, dueAt, TimeSpan.Zero, targetLikelyNew: targetLikelyNew);

        public void EnlistWrite(Action<StoreTransaction> write) => grain.EnlistWrite(write);
    }
}

/// <summary>Orleans' <c>Grain&lt;TState&gt;</c>: one persistent state, loaded before activation, versioned on every write.</summary>
public abstract class Grain<TState> : Grain, IPersistentGrain where TState : class, new()
{
    protected TState State { get; set; } = new();

    /// <summary>Marks the state to be written when this turn commits.</summary>
    protected Task WriteStateAsync()
    {
        Turn().StateWrite = StateWrite.Write;
        return Task.CompletedTask;
    }

    /// <summary>Deletes the stored state when this turn commits and resets it to a new <typeparamref name="TState"/>.</summary>
    protected Task ClearStateAsync()
    {
        Turn().StateWrite = StateWrite.Clear;
        State = new TState();
        return Task.CompletedTask;
    }

    /// <summary>
    /// The state of a grain that has stored none, read when it is activated: null for a new <typeparamref name="TState"/>. A
    /// grain whose first turn may have run detached (<see cref="DetachedTurn"/>), writing no state, derives it here from
    /// what that turn wrote. Until the grain writes its state, every activation derives it again.
    /// </summary>
    protected virtual Task<TState?> UnstoredStateAsync(IDataStore store, CancellationToken cancellationToken) => Task.FromResult<TState?>(null);

    private TurnContext Turn() => Activation.CurrentTurn
        ?? throw new InvalidOperationException($"Grain {GrainId}: state can only be written during a turn.");

    Type IPersistentGrain.StateType => typeof(TState);
    object IPersistentGrain.State { get => State; set => State = (TState)value; }
    async Task<object?> IPersistentGrain.UnstoredStateAsync(IDataStore store, CancellationToken cancellationToken) =>
        await UnstoredStateAsync(store, cancellationToken);
}

internal interface IPersistentGrain
{
    Type StateType { get; }
    object State { get; set; }
    Task<object?> UnstoredStateAsync(IDataStore store, CancellationToken cancellationToken);
}
