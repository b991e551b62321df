using System.Data.Common;
using DataBuild.Runtime.Hosting;
using Npgsql;
using NpgsqlTypes;

namespace DataBuild.Runtime.Storage;

/// <summary>A grain's persisted state: a payload and a version that fences every write.</summary>
public sealed record StoredState(long Version, byte[] Payload);

/// <summary>
/// Versioned grain state, as Orleans' ADO.NET <c>WriteToStorage</c>: a write succeeds only on the version
/// the writer last saw; otherwise <see cref="InconsistentStateException"/>.
/// </summary>
public sealed class GrainStateTable(IDataStore store, Postgres.GrainStateReads? batchedReads = null)
{
    /// <summary>One grain's state by its key (<see cref="Postgres.GrainStateReads"/> sends it for a batch of one).</summary>
    internal const string SelectOne = "SELECT version, payload FROM grain_state WHERE grain_type = $1 AND grain_key = $2";

    /// <summary>The state in the reader's current row, from column <paramref name="at"/> on: version, payload.</summary>
    internal static StoredState StateAt(DbDataReader reader, int at) => new(reader.GetInt64(at), (byte[])reader[at + 1]);

    /// <summary>
    /// Reads a grain's state. Inside a PostgreSQL transaction with <paramref name="forUpdate"/>, the grain stays
    /// locked until the transaction ends, so activations on other silos wait their turn.
    /// </summary>
    public async Task<StoredState?> ReadAsync(StoreTransaction? transaction, GrainId id, bool forUpdate, CancellationToken cancellationToken = default)
    {
        DbConnection? own = null;
        try
        {
            if (transaction is not null && forUpdate && transaction.IsPostgres())
                return await LockAndReadAsync(transaction, id, cancellationToken);
            if (transaction is null && batchedReads is not null)
            {
                JoinedTurn.ThrowIfSpeculating("read the database");
                return await batchedReads.ReadAsync(id, cancellationToken);
            }
            DbCommand command;
            if (transaction is not null)
                command = transaction.Command(SelectOne, id.Type, id.Key);
            else
                command = Sql.Command(own = await store.OpenConnectionAsync(cancellationToken), null, SelectOne, id.Type, id.Key);
            await using (command)
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                return await reader.ReadAsync(cancellationToken) ? StateAt(reader, 0) : null;
            }
        }
        finally
        {
            if (own is not null) await own.DisposeAsync();
        }
    }

    /// <summary>
    /// Two statements in one round trip: the read's snapshot is taken after the lock is granted, so it sees the
    /// last holder's commit. A transaction-scoped advisory lock (not FOR UPDATE) leaves the turn without a
    /// transaction id until it writes, so an open turn does not hold back the event log's watermark, and the
    /// lock ends with the transaction if the connection dies.
    /// </summary>
    private static Task<StoredState?> LockAndReadAsync(StoreTransaction transaction, GrainId id, CancellationToken cancellationToken) =>
        transaction.LockThenQueryAsync(TurnLockKey(id),
            async reader => await reader.ReadAsync(cancellationToken) ? StateAt(reader, 0) : null,
            cancellationToken, SelectOne, id.Type, id.Key);

    /// <summary>
    /// Writes on <paramref name="expectedVersion"/> (0: the grain has no row yet), deferred to the transaction's
    /// commit; the commit fails with <see cref="InconsistentStateException"/> if the version moved. Returns the new version.
    /// </summary>
    public static long Write(StoreTransaction transaction, GrainId id, long expectedVersion, byte[] payload, long nowMs)
    {
        var stale = Stale(id, expectedVersion);
        if (expectedVersion == 0)
            transaction.Defer(new StoreTransaction.DeferredWrite("""
                INSERT INTO grain_state (grain_type, grain_key, version, payload, updated_at) VALUES ($1, $2, 1, $3, $4)
                ON CONFLICT (grain_type, grain_key) DO NOTHING
                """, [id.Type, id.Key, payload, nowMs], 1, stale, null, Row: RowOf(id)));
        else
            transaction.Defer(new StoreTransaction.DeferredWrite("""
                UPDATE grain_state SET version = version + 1, payload = $3, updated_at = $4
                 WHERE grain_type = $1 AND grain_key = $2 AND version = $5
                """, [id.Type, id.Key, payload, nowMs, expectedVersion], 1, stale, null, Row: RowOf(id)));
        return expectedVersion + 1;
    }

    /// <summary>Deletes the state on <paramref name="expectedVersion"/> (deferred, checked like <see cref="Write"/>); the grain starts afresh at version 0.</summary>
    public static void Clear(StoreTransaction transaction, GrainId id, long expectedVersion)
    {
        if (expectedVersion == 0) return;
        transaction.Defer(new StoreTransaction.DeferredWrite("DELETE FROM grain_state WHERE grain_type = $1 AND grain_key = $2 AND version = $3",
            [id.Type, id.Key, expectedVersion], 1, Stale(id, expectedVersion), null, Row: RowOf(id)));
    }

    /// <summary>
    /// PostgreSQL, first in an optimistic turn's batch: takes the grain's turn lock and checks that the stored
    /// version is still <paramref name="expectedVersion"/>, so that everything else the turn writes rests on
    /// the state it read. Fails the commit with <see cref="InconsistentStateException"/> otherwise.
    /// </summary>
    public static void Fence(StoreTransaction transaction, GrainId id, long expectedVersion) => PlaceFence(transaction, id, expectedVersion);

    /// <summary>As <see cref="Fence"/>; returns the fence, which <see cref="FenceAndWrite"/> may turn into the turn's state write.</summary>
    internal static StoreTransaction.DeferredWrite PlaceFence(StoreTransaction transaction, GrainId id, long expectedVersion)
    {
        var fence = new StoreTransaction.DeferredWrite("SELECT databuild_grain_fence($1, $2, $3, $4, $5)",
            [TurnLockKey(id), id.Type, id.Key, expectedVersion], -1, Stale(id, expectedVersion), null, Row: RowOf(id));
        transaction.Defer(fence);
        return fence;
    }

    /// <summary>
    /// Writes the state as <see cref="Write"/> does; when the turn's <paramref name="fence"/> has not been sent yet, the
    /// write takes its place, first in the batch, as one statement that takes the lock and writes on the version
    /// (009_grain_write.sql): one statement fewer per turn, with the same checks. A group commit may send the writes of
    /// several turns as one statement (<see cref="Writes"/>).
    /// </summary>
    internal static long FenceAndWrite(StoreTransaction transaction, StoreTransaction.DeferredWrite fence, GrainId id, long expectedVersion, byte[] payload, long nowMs)
    {
        // The fence's raising call and failure, with the write added.
        var write = fence with
        {
            Sql = Writes.Sql,
            Args = [TurnLockKey(id), id.Type, id.Key, expectedVersion, payload, nowMs],
            Merge = Writes.Merge,
        };
        return transaction.TryReplaceDeferred(fence, write) ? expectedVersion + 1 : Write(transaction, id, expectedVersion, payload, nowMs);
    }

    // The fence and write of 009 ($7, the tag, is appended when the batch is sent); a group commit may send those of several
    // turns as one statement (010_grain_write_all.sql), at the end of its batch, with the same locks and checks. If one
    // fails, the statement names no turn, and the group is sent again unmerged.
    private static readonly MergeableWrite Writes = new("SELECT databuild_grain_write($1, $2, $3, $4, $5, $6, $7)",
        "SELECT databuild_grain_write_all($1, $2, $3, $4, $5, $6)",
        NpgsqlDbType.Bigint, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Bigint, NpgsqlDbType.Bytea, NpgsqlDbType.Bigint);

    /// <summary>The row of a grain's state, as a group commit names it (<see cref="StoreTransaction.DeferredWrite.Row"/>).</summary>
    private static string RowOf(GrainId id) => $"grain_state\0{id.Type}\0{id.Key}";

    /// <summary>The failure of a write or fence that found the grain no longer at the version its turn read.</summary>
    private static Func<Exception> Stale(GrainId id, long expectedVersion) => () => new InconsistentStateException(id, expectedVersion);

    private static long TurnLockKey(GrainId id) => AdvisoryLockKey.For($"grain:{id.Type}/{id.Key}");
}
