using System.Collections.Concurrent;
using DataBuild.Protos;
using DataBuild.Runtime.Hosting;

namespace DataBuild.Tests;

public interface ICounterGrain : IGrainWithStringKey
{
    Task<long> Increment();
    Task<long> Get();
    /// <summary>Writes state, appends an event and sets a reminder, then throws.</summary>
    Task IncrementThenFail();
    /// <summary>Increments; on a first run (not a retry after a refusal) also adds 100 and has its commit refused.</summary>
    Task<long> IncrementRefusedOnce();
    /// <summary>Increments once <paramref name="release"/> completes; <paramref name="entered"/> is set when its turn has begun.</summary>
    Task<long> IncrementOnceReleased(TaskCompletionSource entered, Task release);
}

public sealed class CounterState
{
    public long Count { get; set; }
}

[GrainType("counter")]
public sealed class CounterGrain(Deactivations deactivations) : Grain<CounterState>, ICounterGrain
{
    public async Task<long> Increment()
    {
        State.Count++;
        await WriteStateAsync();
        return State.Count;
    }

    public Task<long> Get() => Task.FromResult(State.Count);

    public async Task<long> IncrementOnceReleased(TaskCompletionSource entered, Task release)
    {
        entered.TrySetResult();
        await release;
        return await Increment();
    }

    public async Task<long> IncrementRefusedOnce()
    {
        State.Count++;
        if (!IsRetryAfterRefusal)
        {
            State.Count += 100;
            await WriteStateAsync();
            throw new TurnRefusedException("refused, as an optimistic check at the commit would refuse it");
        }
        await WriteStateAsync();
        return State.Count;
    }

    public async Task IncrementThenFail()
    {
        State.Count++;
        await WriteStateAsync();
        AppendEvent(new DataBuildEvent { WantSatisfied = new WantSatisfiedEventV1 { WantId = GrainKey } });
        await RegisterOrUpdateReminder("never", TimeSpan.FromMinutes(1), TimeSpan.Zero);
        throw new InvalidOperationException("fails after writing");
    }

    public override Task OnDeactivateAsync(CancellationToken cancellationToken)
    {
        deactivations.Record(GrainKey);
        return Task.CompletedTask;
    }
}

public sealed class Deactivations
{
    private readonly ConcurrentBag<string> _keys = [];
    public void Record(string key) => _keys.Add(key);
    public IReadOnlyCollection<string> Keys => _keys;
}

/// <summary>Where probe grains report committed reminder deliveries: (grain, reminder, tick) in commit order.</summary>
public sealed class DeliveryLog
{
    private readonly ConcurrentQueue<Delivery> _deliveries = new();
    public sealed record Delivery(string Grain, string Reminder, DateTimeOffset Tick, DateTimeOffset At, int Attempt);
    public void Add(Delivery d) => _deliveries.Enqueue(d);
    public IReadOnlyList<Delivery> All => _deliveries.ToArray();
    public int Count => _deliveries.Count;

    /// <summary>Deliveries to fail before letting one through, per reminder name.</summary>
    public ConcurrentDictionary<string, int> FailuresToInject { get; } = new();

    /// <summary>When set, deliveries wait on it (to hold a claim open).</summary>
    public TaskCompletionSource? Gate { get; set; }
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

public interface IReminderProbeGrain : IGrainWithStringKey
{
    Task Schedule(string name, DateTimeOffset dueAt, TimeSpan period);
    Task ScheduleFor(string otherKey, string name, DateTimeOffset dueAt, bool inSendersCommit = true);
    Task Cancel(string name);
    Task<int> Delivered();
}

public sealed class ProbeState
{
    public int Delivered { get; set; }
}

[GrainType("probe")]
public sealed class ReminderProbeGrain(DeliveryLog log) : Grain<ProbeState>, IReminderProbeGrain, IRemindable
{
    private int _attempts;

    public Task Schedule(string name, DateTimeOffset dueAt, TimeSpan period) => RegisterOrUpdateReminder(name, dueAt, period);

    public Task ScheduleFor(string otherKey, string name, DateTimeOffset dueAt, bool inSendersCommit = true) =>
        RegisterOrUpdateReminderFor(IdOf<IReminderProbeGrain>(otherKey), name, dueAt, TimeSpan.Zero, inSendersCommit);

    public async Task Cancel(string name)
    {
        if (await GetReminder(name) is { } reminder) await UnregisterReminder(reminder);
    }

    public Task<int> Delivered() => Task.FromResult(State.Delivered);

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        _attempts++;
        // "call:<key>": the delivery calls another grain first (which a turn joined to its sender's commit may not do).
        if (reminderName.StartsWith("call:", StringComparison.Ordinal))
            await GrainFactory.GetGrain<ICycleGrain>(reminderName["call:".Length..]).CallThrough([]);
        if (log.Gate is { } gate)
        {
            log.Entered.TrySetResult();
            await gate.Task;
        }
        if (log.FailuresToInject.TryGetValue(reminderName, out var failures) && failures > 0)
        {
            log.FailuresToInject[reminderName] = failures - 1;
            throw new InvalidOperationException($"injected failure of {reminderName}");
        }
        State.Delivered++;
        await WriteStateAsync();
        var delivery = new DeliveryLog.Delivery(GrainKey, reminderName, status.CurrentTickTime, Clock.GetUtcNow(), _attempts);
        AfterCommit(() => log.Add(delivery)); // the log holds deliveries that took effect
    }
}

public interface ICycleGrain : IGrainWithStringKey
{
    Task<string> CallThrough(string[] path);
}

[GrainType("cycle")]
public sealed class CycleGrain : Grain, ICycleGrain
{
    public Task<string> CallThrough(string[] path) =>
        path.Length == 0 ? Task.FromResult(GrainKey) : GrainFactory.GetGrain<ICycleGrain>(path[0]).CallThrough(path[1..]);
}

public static class TestGrains
{
    public static GrainTypeRegistry Registry() => new GrainTypeRegistry()
        .Add<ICounterGrain, CounterGrain>()
        .Add<IReminderProbeGrain, ReminderProbeGrain>()
        .Add<ICycleGrain, CycleGrain>();
}
