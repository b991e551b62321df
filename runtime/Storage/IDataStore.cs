using DataBuild.Runtime.EventLog;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// One database shared by every silo of a cluster (or one SQLite file for a single embedded silo).
/// Each storage contract (the event log today; grain state, reminders and job runs as they come) is a
/// property of the store and works inside a <see cref="StoreTransaction"/> the caller owns.
/// </summary>
public interface IDataStore : IAsyncDisposable
{
    StoreLocation Location { get; }

    /// <summary>Creates or upgrades the schema. Idempotent; safe when several processes run it at once.</summary>
    Task MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>Starts a read-write transaction. Dispose without commit rolls it back.</summary>
    Task<StoreTransaction> BeginAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a transaction for a batch of deferred writes. On PostgreSQL nothing is sent until the commit,
    /// and if no statement needs an answer first, the writes and the commit are one round trip (an implicit
    /// transaction); a statement that needs an answer starts an explicit transaction. SQLite: as <see cref="BeginAsync"/>.
    /// </summary>
    Task<StoreTransaction> BeginTurnAsync(CancellationToken cancellationToken = default);

    /// <summary>True when the database answers a trivial query within the token's deadline.</summary>
    Task<bool> IsReachableAsync(CancellationToken cancellationToken = default);

    /// <summary>Opens a connection for reads outside any transaction (each statement sees committed data).</summary>
    Task<System.Data.Common.DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default);

    IEventLog Events { get; }

    GrainStateTable GrainStates { get; }

    ReminderTable Reminders { get; }

    MembershipTable Membership { get; }

    /// <summary>Pulsed when reminders may have become due sooner than a silo expected (local commits and other silos').</summary>
    ChangeSignal RemindersChanged { get; }

    /// <summary>Tells every silo that reminders changed (this one at once, others via the database).</summary>
    void PublishRemindersChanged();

    /// <summary>Pulsed when job runs may have been queued (or their leases released).</summary>
    ChangeSignal JobsQueued { get; }

    /// <summary>Tells every silo that job runs were queued.</summary>
    void PublishJobsQueued();

    /// <summary>Pulsed whenever events may have become visible (local commits, and other silos' via the database).</summary>
    ChangeSignal EventsAppended { get; }
}
