using System.Text.Json;
using DataBuild.Runtime.Storage;
using DataBuild.Runtime.Storage.Postgres;
using DataBuild.Runtime.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DataBuild.Runtime.Hosting;

/// <summary>What every activation of one silo shares: the store, the grain types, services and the catalog.</summary>
internal sealed class GrainRuntime : IGrainFactory, IDetachedTurns
{
    public static readonly JsonSerializerOptions StateJson = new(JsonSerializerDefaults.General) { IncludeFields = false };

    private readonly IServiceProvider _services;

    public GrainRuntime(IDataStore store, GrainTypeRegistry types, IServiceProvider services, TimeProvider clock, ILogger log)
    {
        Store = store;
        Types = types;
        _services = services;
        Clock = clock;
        Log = log;
        Catalog = new GrainCatalog(this);
        // With several silos on one database, activations of one grain may exist on more than one silo;
        // a row lock per turn makes them take turns. A SQLite store has one silo, whose memory is authoritative.
        LockStatePerTurn = store is PostgresStore;
    }

    public IDataStore Store { get; }
    public GrainTypeRegistry Types { get; }
    public TimeProvider Clock { get; }
    public ILogger Log { get; }
    public GrainCatalog Catalog { get; }

    /// <summary>This silo's reminder service (set by the silo host): messages written here are delivered here when they can be.</summary>
    public Reminders.ReminderService Reminders { get; set; } = null!;
    public bool LockStatePerTurn { get; }
    public IGrainFactory GrainFactory => this;

    /// <summary>Cancelled when the silo is killed: in-flight turns abandon their transactions.</summary>
    public CancellationToken Killed { get; set; }

    public TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(key);
        return GrainReference.Create<TGrainInterface>(this, Types.IdOf<TGrainInterface>(key), assumeNew: false);
    }

    public TGrainInterface GetNewGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(key);
        return GrainReference.Create<TGrainInterface>(this, Types.IdOf<TGrainInterface>(key), assumeNew: true);
    }

    public DetachedTurn Begin<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey =>
        new(Types, Types.IdOf<TGrainInterface>(key));

    public async Task CommitAsync(DetachedTurn turn)
    {
        turn.StartCommit();
        try
        {
            await using var tx = await Store.BeginTurnAsync(Killed);
            foreach (var write in turn.Context.Writes) await write(tx, Killed);
            WriteRemindersEventsAndCallbacks(tx, turn.Context);
            await tx.CommitAsync(Killed);
        }
        catch (Exception)
        {
            DataBuildMetrics.TurnEnded(turn.Grain.Type, "failed");
            throw;
        }
        // Counted as a turn of its grain, as a dashboard of turns by grain type expects of a want's creation.
        DataBuildMetrics.TurnEnded(turn.Grain.Type, "committed");
    }

    /// <summary>A turn's reminder changes, events and after-commit actions, into its transaction (after its state).</summary>
    public void WriteRemindersEventsAndCallbacks(StoreTransaction tx, TurnContext turn)
    {
        foreach (var change in turn.ReminderChanges)
        {
            // A removal never makes anything due sooner: no loop needs waking for it.
            if (change.DueAt is not { } dueAt) ReminderTable.Delete(tx, change.Grain, change.Name);
            else Reminders.Schedule(tx, change.Grain, change.Name, dueAt, change.PeriodMs, change.InSendersCommit, change.TargetLikelyNew);
        }
        Store.Events.AppendDeferred(tx, turn.Events);
        foreach (var action in turn.AfterCommit) tx.OnCommitted(action);
    }

    public Grain CreateInstance(GrainId id) =>
        (Grain)ActivatorUtilities.CreateInstance(_services, Types.ClassOf(id.Type));

    /// <summary>
    /// One call into a grain: refuses call cycles, activates on demand, retries once on a fresh activation
    /// when the stored state moved under the old one, and once at once when the commit was refused by an
    /// optimistic check (<see cref="TurnRefusedException"/>).
    /// </summary>
    public async Task<T> InvokeAsync<T>(GrainId id, Func<Grain, Task<T>> call, ReminderDelivery? delivery = null, bool assumeNew = false)
    {
        var chain = CallChain.Current;
        if (chain.Contains(id)) throw new GrainCallCycleException(chain, id);
        // The grain called could be the message's sender, whose turn is waiting for this one's batch.
        if (!chain.IsEmpty) JoinedTurn.ThrowIfSpeculating("call another grain");
        var refused = false;
        // Only a write refused on a stale version is a conflict (with another silo's activation). A retry because the
        // activation was collected or dropped under the call, refused by an optimistic check, or wrongly assumed new is not.
        var conflicted = false;
        while (true)
        {
            // Only the first lookup may assume a new grain: a retry reads what is stored.
            var activation = await Catalog.GetOrActivateAsync(id, assumeNew, Killed);
            assumeNew = false;
            // After a conflict, the retry locks: two silos' activations then take turns instead of failing again.
            if (conflicted) activation.LockEachTurn = true;
            try
            {
                return await activation.RunTurnAsync(() => call(activation.Instance), delivery, Killed, afterRefusal: refused);
            }
            catch (TurnRefusedException) when (!refused)
            {
                refused = true; // the same activation: its state was restored to the last commit
            }
            catch (ActivationDefunctException)
            {
                // collected or dropped between lookup and turn: look it up again
            }
            catch (InconsistentStateException e) when (!conflicted && e.Grain == id)
            {
                if (!activation.AssumedNew) // one assumed new that was stored after all: the retry reads it
                {
                    Log.LogInconsistentState(e.Grain, e.Message);
                    conflicted = true;
                }
                Catalog.Drop(activation);
            }
        }
    }
}

internal static partial class RuntimeLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Deactivating {Grain} failed")]
    public static partial void LogDeactivationFailed(this ILogger log, Exception e, GrainId grain);

    [LoggerMessage(Level = LogLevel.Information, Message = "Grain {Grain}: {Reason}; retrying on a fresh activation")]
    public static partial void LogInconsistentState(this ILogger log, GrainId grain, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reminder {Name} of {Grain} failed (attempt {Attempt}); retrying at {RetryAt:o}")]
    public static partial void LogReminderFailed(this ILogger log, Exception e, string name, GrainId grain, int attempt, DateTimeOffset retryAt);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Reminder {Name} of {Grain} was taken over while being delivered; dropping this delivery")]
    public static partial void LogReminderStale(this ILogger log, string name, GrainId grain);

    [LoggerMessage(Level = LogLevel.Error, Message = "Reminder loop failed; retrying")]
    public static partial void LogReminderLoopFailed(this ILogger log, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silos {Silos} stopped heartbeating; their leases were released")]
    public static partial void LogSilosDeclaredDead(this ILogger log, string silos);

    [LoggerMessage(Level = LogLevel.Warning, Message = "This silo ({Silo}) had been declared dead by another silo; it is active again")]
    public static partial void LogRevived(this ILogger log, string silo);

    [LoggerMessage(Level = LogLevel.Error, Message = "Membership heartbeat failed")]
    public static partial void LogHeartbeatFailed(this ILogger log, Exception e);
}
