using DataBuild.Protos;
using DataBuild.Runtime.Storage;

namespace DataBuild.Runtime.Hosting;

internal enum StateWrite { None, Write, Clear }

/// <summary>
/// A reminder registration (DueAt set) or removal (DueAt null) made during a turn; whether a message may join its sender's
/// commit, and whether its target is most likely a grain never stored (its joined turn then skips reading its state).
/// </summary>
internal sealed record ReminderChange(GrainId Grain, string Name, long? DueAt, long PeriodMs, bool InSendersCommit = true, bool TargetLikelyNew = false);

/// <summary>
/// A claimed reminder being delivered by this turn, and where its schedule goes next (null: done). A message delivered
/// ahead of its sender's commit is <paramref name="Joined"/> to it (<see cref="CommitJoin"/>).
/// </summary>
internal sealed record ReminderDelivery(ReminderRow Claim, long? NextDueAt, JoinedTurn? Joined = null);

/// <summary>Everything one turn will write, committed together when the turn's method returns.</summary>
internal sealed class TurnContext
{
    public StoreTransaction? Transaction { get; set; }
    public StateWrite StateWrite { get; set; }
    public List<DataBuildEvent> Events { get; } = [];
    public List<ReminderChange> ReminderChanges { get; } = [];
    public List<Func<StoreTransaction, CancellationToken, Task>> Writes { get; } = [];
    public List<Action> AfterCommit { get; } = [];
    public ReminderDelivery? Delivery { get; init; }
    public bool AfterRefusal { get; init; }

    public bool HasWrites =>
        StateWrite != StateWrite.None || Events.Count > 0 || ReminderChanges.Count > 0 || Writes.Count > 0 || Delivery is not null;
}

/// <summary>The reminder this turn was delivering was taken over by another silo or re-registered; the turn is void.</summary>
internal sealed class StaleReminderClaimException(ReminderRow claim)
    : Exception($"Reminder '{claim.Name}' of {claim.Grain} was claimed again or changed while being delivered.");

/// <summary>The activation was collected or dropped between lookup and turn; the caller looks it up again.</summary>
internal sealed class ActivationDefunctException() : Exception("The grain activation is no longer in use.");
