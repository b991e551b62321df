using DataBuild.Runtime.EventLog;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace DataBuild.Runtime.Storage.Postgres;

/// <summary>PostgreSQL: the store for clusters. Every cross-silo guarantee rests on this database.</summary>
public sealed class PostgresStore : IDataStore
{
    internal const string EventsChannel = "databuild_events";
    internal const string RemindersChannel = "databuild_reminders";
    internal const string JobsChannel = "databuild_jobs";

    // Any fixed 64-bit number: the key of the transaction-scoped lock that serialises migrations.
    private const long MigrationLockKey = 0x44617461_4275696C; // "DataBuil"

    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresNotifications _notifications;
    private readonly GroupCommit _groupCommit;
    private readonly GrainStateReads _grainStateReads;

    public PostgresStore(StoreLocation location, TimeProvider clock, ILoggerFactory? loggers = null)
    {
        Location = location;
        var builder = new NpgsqlConnectionStringBuilder(location.Target);
        if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = "databuild";
        // Our statements are few and repeated on every turn: let Npgsql prepare them on the server.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 64;
        // We change no session state on pooled connections (LISTEN has a connection of its own), so skip the reset.
        builder.NoResetOnClose = true;
        // A group commit learns which turn's statement failed from the error (GroupCommit).
        builder.IncludeFailedBatchedCommand = true;
        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        var logger = (loggers ?? NullLoggerFactory.Instance).CreateLogger<PostgresStore>();
        _notifications = new PostgresNotifications(_dataSource, logger, [EventsChannel, RemindersChannel, JobsChannel]);
        Events = new PostgresEventLog(clock, _dataSource, () => _notifications.Publish(EventsChannel));
        _groupCommit = new GroupCommit(_dataSource);
        _grainStateReads = new GrainStateReads(_dataSource);
    }

    public StoreLocation Location { get; }

    /// <summary>
    /// How long a turn's commit waits for the turns of its messages to join it (<see cref="CommitJoin"/>). A turn
    /// that arrives later still commits, in a transaction of its own behind its sender's.
    /// </summary>
    public TimeSpan CommitJoinWait
    {
        get => _groupCommit.JoinWait;
        set => _groupCommit.JoinWait = value;
    }
    public IEventLog Events { get; }
    public ChangeSignal EventsAppended => _notifications.Signal(EventsChannel);
    public GrainStateTable GrainStates => new(this, _grainStateReads);
    public ReminderTable Reminders => new(this);
    public MembershipTable Membership => new(this);
    public ChangeSignal RemindersChanged => _notifications.Signal(RemindersChannel);
    public void PublishRemindersChanged() => _notifications.Publish(RemindersChannel);
    public ChangeSignal JobsQueued => _notifications.Signal(JobsChannel);
    public void PublishJobsQueued() => _notifications.Publish(JobsChannel);

    public async Task<System.Data.Common.DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        JoinedTurn.ThrowIfSpeculating("read the database");
        return await _dataSource.OpenConnectionAsync(cancellationToken);
    }
    internal NpgsqlDataSource DataSource => _dataSource;

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        async Task Run(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        // Transaction-scoped: if this connection dies the lock goes with the transaction, and so does any half-applied step.
        await Run($"SELECT pg_advisory_xact_lock({MigrationLockKey})");
        await Run("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """);
        var applied = new HashSet<int>();
        await using (var command = new NpgsqlCommand("SELECT version FROM schema_migrations", connection, transaction))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) applied.Add(reader.GetInt32(0));
        }
        foreach (var migration in Migration.For("postgres"))
        {
            if (applied.Contains(migration.Version)) continue;
            await Run(migration.Sql);
            await using var record = new NpgsqlCommand("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", connection, transaction);
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Version });
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Name });
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
        // After a restore into a fresh cluster, transaction ids restart below those that numbered the restored
        // events; move new indexes above the old ones. Under the migration lock, before this silo appends.
        await Run("""
            UPDATE bel_meta m
               SET xid_offset = (hi.top >> 16) + 1 - pg_current_xact_id()::text::bigint
              FROM (SELECT max(idx) AS top FROM bel_events) hi
             WHERE hi.top IS NOT NULL
               AND (hi.top >> 16) >= pg_current_xact_id()::text::bigint + m.xid_offset
            """);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<StoreTransaction> BeginAsync(CancellationToken cancellationToken = default)
    {
        JoinedTurn.ThrowIfSpeculating("open a transaction of its own");
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken);
            return new StoreTransaction(connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public Task<StoreTransaction> BeginTurnAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(new StoreTransaction(_groupCommit));

    public async Task<bool> IsReachableAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = _dataSource.CreateCommand("SELECT 1 FROM schema_migrations LIMIT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or PostgresException or OperationCanceledException or TimeoutException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _notifications.DisposeAsync();
        await _dataSource.DisposeAsync();
    }
}
