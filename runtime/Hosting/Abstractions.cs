namespace DataBuild.Runtime.Hosting;

/// <summary>Marker for grain interfaces, as in Orleans.</summary>
public interface IGrain;

/// <summary>A grain addressed by a string key (a UUID, a partition ref, …).</summary>
public interface IGrainWithStringKey : IGrain;

public interface IGrainFactory
{
    /// <summary>A reference to the grain; it is activated on first call, on whichever silo makes the call.</summary>
    TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey;

    /// <summary>
    /// A reference to a grain the caller has just named with a key nobody else can know yet (a new GUID): its
    /// activation assumes that nothing is stored for it instead of reading first, which saves a round trip. The
    /// commit's version check still guards the assumption: were it wrong, the call is retried on a fresh
    /// activation that reads. Otherwise as <see cref="GetGrain{TGrainInterface}"/>.
    /// </summary>
    TGrainInterface GetNewGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey;
}

/// <summary>A grain that receives durable reminders.</summary>
public interface IRemindable : IGrain
{
    Task ReceiveReminder(string reminderName, TickStatus status);
}

/// <summary>When a reminder tick was due, as in Orleans.</summary>
public readonly record struct TickStatus(DateTimeOffset FirstTickTime, TimeSpan Period, DateTimeOffset CurrentTickTime);

public interface IGrainReminder
{
    string ReminderName { get; }
}

/// <summary>Names a grain class's type, the first half of its <see cref="GrainId"/>. Defaults to the class name.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class GrainTypeAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

/// <summary>
/// Raised when a grain writes state on a version that is no longer current (another activation wrote
/// first). The activation is dropped and the call retried once on a fresh one.
/// </summary>
public sealed class InconsistentStateException(GrainId grain, long expectedVersion)
    : Exception($"Grain {grain}: the stored state is no longer at version {expectedVersion}; another activation wrote it.")
{
    public GrainId Grain { get; } = grain;
}

/// <summary>
/// Raised when a call would re-enter a grain already in the current call chain (A → B → A). Turns are not
/// reentrant, so such a call could only deadlock; it fails at once instead.
/// </summary>
public sealed class GrainCallCycleException(IReadOnlyList<GrainId> chain, GrainId target)
    : Exception($"Call cycle: {string.Join(" → ", chain)} → {target}. Grain turns are not reentrant; " +
                "send a reminder or restructure the calls so that no grain calls back into its caller.")
{
    public GrainId Target { get; } = target;
}
