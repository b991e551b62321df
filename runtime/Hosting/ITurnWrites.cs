using DataBuild.Protos;
using DataBuild.Runtime.Storage;

namespace DataBuild.Runtime.Hosting;

/// <summary>
/// What a turn writes besides its grain's state: events, reminders (its grain's own, or messages to other grains) and
/// writes enlisted in its transaction, all committed together. A grain's turn offers it (<see cref="Grain.ThisTurn"/>),
/// and so does a <see cref="DetachedTurn"/>, so that one piece of code can write a grain's first turn either way.
/// </summary>
public interface ITurnWrites
{
    GrainId IdOf<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey;

    /// <summary>Appends a build event.</summary>
    void AppendEvent(DataBuildEvent e);

    /// <summary>
    /// A one-shot reminder for <paramref name="target"/> (a grain's own deadline, or a message to another grain: see
    /// <see cref="Grain.RegisterOrUpdateReminderFor"/>).
    /// </summary>
    void RemindOnce(GrainId target, string name, DateTimeOffset dueAt, bool targetLikelyNew = false);

    /// <summary>A write that only defers statements (<see cref="StoreTransaction.Defer(string, object?[])"/>), run in the turn's transaction first.</summary>
    void EnlistWrite(Action<StoreTransaction> write);
}
