using DataBuild.Protos;
using DataBuild.Runtime.Storage;

namespace DataBuild.Runtime.Hosting;

/// <summary>
/// A grain's first turn run without activating the grain (<see cref="IDetachedTurns"/>): it writes what that turn would
/// (events, reminders, enlisted writes) except the grain's state, which the grain derives from those writes when it is
/// first activated (<see cref="Grain{TState}.UnstoredStateAsync"/>).
/// </summary>
public sealed class DetachedTurn : ITurnWrites
{
    private readonly GrainTypeRegistry _types;

    internal DetachedTurn(GrainTypeRegistry types, GrainId grain)
    {
        _types = types;
        Grain = grain;
    }

    /// <summary>The grain whose turn this is.</summary>
    public GrainId Grain { get; }

    internal TurnContext Context { get; } = new();

    private int _committing;

    /// <summary>A turn commits once: a second commit would write its events and messages twice.</summary>
    internal void StartCommit()
    {
        if (Interlocked.Exchange(ref _committing, 1) != 0) throw new InvalidOperationException($"The detached turn of {Grain} was already committed.");
    }

    public GrainId IdOf<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey => _types.IdOf<TGrainInterface>(key);

    public void AppendEvent(DataBuildEvent e) => Context.Events.Add(e);

    /// <summary>
    /// As a grain's turn would: a message to another grain may be delivered in this turn's commit; one to this grain (a
    /// deadline already due) only after it, as a grain's turn is still running when its commit goes, and the grain's
    /// state is only there to derive once it has committed.
    /// </summary>
    public void RemindOnce(GrainId target, string name, DateTimeOffset dueAt, bool targetLikelyNew = false) =>
        Context.ReminderChanges.Add(new ReminderChange(target, name, dueAt.ToUnixTimeMilliseconds(), 0, InSendersCommit: target != Grain,
            TargetLikelyNew: targetLikelyNew));

    public void EnlistWrite(Action<StoreTransaction> write) => Context.Writes.Add((tx, _) => { write(tx); return Task.CompletedTask; });
}

/// <summary>
/// Commits <see cref="DetachedTurn"/>s: for a grain whose first turn needs nothing in memory and whose state can be derived
/// from what that turn writes (a want created at the API), so that creating it costs no activation and no state row.
/// The commit is a turn's: one transaction, in the store's group commit, with its messages joined to it. Only for a grain
/// that derives its state (overrides <see cref="Grain{TState}.UnstoredStateAsync"/>); any other would start empty. A silo
/// of a version without the derivation would treat such a grain as never created: see docs/architecture.md on upgrades.
/// </summary>
public interface IDetachedTurns
{
    /// <summary>A first turn of the grain <typeparamref name="TGrainInterface"/> <paramref name="key"/>, to be committed without it.</summary>
    DetachedTurn Begin<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey;

    Task CommitAsync(DetachedTurn turn);
}
