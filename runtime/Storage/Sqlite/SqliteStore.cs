using DataBuild.Runtime.EventLog;
using Microsoft.Data.Sqlite;

namespace DataBuild.Runtime.Storage.Sqlite;

/// <summary>
/// A SQLite file: the embedded store for one silo. Writers take turns through one in-process gate (SQLite
/// admits one writer at a time anyway; the gate makes waiting fair and cheap). Readers use their own
/// connections and, in WAL mode, never block the writer.
/// </summary>
public sealed class SqliteStore : IDataStore
{
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly ChangeSignal _eventsAppended = new();

    public SqliteStore(StoreLocation location, TimeProvider clock)
    {
        Location = location;
        var path = Path.GetFullPath(location.Target);
        var folder = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        Events = new SqliteEventLog(clock, this, _eventsAppended.Pulse);
    }

    public StoreLocation Location { get; }
    public IEventLog Events { get; }
    public ChangeSignal EventsAppended => _eventsAppended;
    public GrainStateTable GrainStates => new(this);
    public ReminderTable Reminders => new(this);
    public MembershipTable Membership => new(this);
    public ChangeSignal RemindersChanged { get; } = new();
    public void PublishRemindersChanged() => RemindersChanged.Pulse();
    public ChangeSignal JobsQueued { get; } = new();
    public void PublishJobsQueued() => JobsQueued.Pulse();

    public async Task<System.Data.Common.DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        await OpenAsync(cancellationToken);

    internal async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var pragmas = connection.CreateCommand();
            // WAL: readers never block the writer. FULL: a commit survives power loss, as PostgreSQL's does.
            pragmas.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000;";
            await pragmas.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var transaction = await BeginAsync(cancellationToken);
        async Task Run(string sql)
        {
            await using var command = transaction.CreateCommand(sql);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        // BEGIN IMMEDIATE holds the file's write lock, so a second process migrating at once waits here.
        await Run("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
            """);
        var applied = new HashSet<long>();
        await using (var command = transaction.CreateCommand("SELECT version FROM schema_migrations"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) applied.Add(reader.GetInt64(0));
        }
        foreach (var migration in Migration.For("sqlite"))
        {
            if (applied.Contains(migration.Version)) continue;
            await Run(migration.Sql);
            await using var record = (SqliteCommand)transaction.CreateCommand("INSERT INTO schema_migrations (version, name) VALUES ($v, $n)");
            record.Parameters.AddWithValue("$v", migration.Version);
            record.Parameters.AddWithValue("$n", migration.Name);
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<StoreTransaction> BeginAsync(CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken);
        SqliteConnection? connection = null;
        try
        {
            connection = await OpenAsync(cancellationToken);
            var transaction = connection.BeginTransaction(deferred: false); // BEGIN IMMEDIATE
            return new StoreTransaction(connection, transaction, () => { _writer.Release(); return ValueTask.CompletedTask; });
        }
        catch
        {
            if (connection is not null) await connection.DisposeAsync();
            _writer.Release();
            throw;
        }
    }

    public Task<StoreTransaction> BeginTurnAsync(CancellationToken cancellationToken = default) => BeginAsync(cancellationToken);

    public async Task<bool> IsReachableAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1 FROM schema_migrations LIMIT 1";
            await command.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is SqliteException or OperationCanceledException or IOException)
        {
            return false;
        }
    }

    public ValueTask DisposeAsync()
    {
        // Pooled connections keep the file open; release them so the file can be moved or deleted.
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
        return ValueTask.CompletedTask;
    }
}
