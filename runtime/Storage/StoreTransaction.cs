using System.Data.Common;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// A caller-owned database transaction. Every storage contract writes through one of these, so that a
/// grain turn's state, events, reminders and job runs commit together or not at all. Work that must only
/// happen after the data is durable (waking followers, in-process delivery) is registered with
/// <see cref="OnCommitted"/> and runs only if the commit succeeds.
/// </summary>
public sealed class StoreTransaction : IAsyncDisposable
{
    private readonly Func<ValueTask>? _release;
    private List<Action>? _afterCommit;
    private bool _finished;
    private bool _disposed;

    internal StoreTransaction(DbConnection connection, DbTransaction transaction, Func<ValueTask>? release = null)
    {
        Connection = connection;
        Transaction = transaction;
        _release = release;
    }

    public DbConnection Connection { get; }
    public DbTransaction Transaction { get; }

    /// <summary>Events appended so far in this transaction (PostgreSQL numbers them within the transaction).</summary>
    internal int EventsAppended { get; set; }

    public bool IsCommitted { get; private set; }

    public void OnCommitted(Action action) => (_afterCommit ??= []).Add(action);

    public DbCommand CreateCommand(string sql)
    {
        var command = Connection.CreateCommand();
        command.Transaction = Transaction;
        command.CommandText = sql;
        return command;
    }

    public async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        if (_finished) throw new InvalidOperationException("The transaction has already finished.");
        await Transaction.CommitAsync(cancellationToken);
        _finished = true;
        IsCommitted = true;
        if (_afterCommit is null) return;
        List<Exception>? errors = null;
        foreach (var action in _afterCommit)
        {
            try { action(); }
            catch (Exception e) { (errors ??= []).Add(e); }
        }
        // The data is committed whatever a callback does; surface callback bugs without pretending the commit failed.
        if (errors is not null) throw new AggregateException("Committed, but an after-commit action failed.", errors);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_finished)
            {
                _finished = true;
                try { await Transaction.RollbackAsync(); }
                catch (Exception) when (Connection.State != System.Data.ConnectionState.Open) { /* connection gone: nothing committed */ }
            }
            await Transaction.DisposeAsync();
            await Connection.DisposeAsync();
        }
        finally
        {
            if (_release is not null) await _release();
        }
    }
}
