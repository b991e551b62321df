using System.Globalization;
using System.Text.Json;
using DataBuild.Runtime.Storage;
using Db = NpgsqlTypes.NpgsqlDbType;

namespace DataBuild.Grains;

/// <summary>The rows the API reads, written inside the owning grain's turn.</summary>
internal static class ReadModels
{
    // Each read model row is written whole by its grain's turn, so a group commit may send the writes of several turns as
    // one statement over arrays (MergeableWrite), at the end of its batch, for rows no other write of the group names.
    private static readonly (string Name, Db Type)[] WantColumns =
    [
        ("want_id", Db.Text), ("status", Db.Text), ("partitions", Db.Text), ("data_timestamp", Db.Bigint), ("ttl_seconds", Db.Bigint),
        ("sla_seconds", Db.Bigint), ("ttl_deadline", Db.Bigint), ("sla_deadline", Db.Bigint), ("source_type", Db.Text), ("source_name", Db.Text),
        ("comment", Db.Text), ("parent_want_id", Db.Text), ("root_want_id", Db.Text), ("sla_violated", Db.Boolean), ("sla_violated_at", Db.Bigint),
        ("created_at", Db.Bigint), ("satisfied_at", Db.Bigint), ("finished_at", Db.Bigint), ("reason", Db.Text),
    ];

    private static readonly MergeableWrite WantRow = MergeableWrite.Insert("wants", """
        ON CONFLICT (want_id) DO UPDATE SET
            status = excluded.status, sla_violated = excluded.sla_violated, sla_violated_at = excluded.sla_violated_at,
            satisfied_at = excluded.satisfied_at, finished_at = excluded.finished_at, reason = excluded.reason
        """, WantColumns);

    private static readonly MergeableWrite NewWantRow = MergeableWrite.Insert("wants", "", WantColumns);

    private static readonly MergeableWrite WantPartitionRow = MergeableWrite.Insert("want_partitions", "ON CONFLICT DO NOTHING",
        ("partition_ref", Db.Text), ("want_id", Db.Text));

    private static readonly MergeableWrite PartitionRow = MergeableWrite.Insert("partitions", """
        ON CONFLICT (partition_ref) DO UPDATE SET
            status = excluded.status, updated_at = excluded.updated_at, available_at = excluded.available_at,
            job_run_id = excluded.job_run_id, reason = excluded.reason, waiting_wants = excluded.waiting_wants
        """,
        ("partition_ref", Db.Text), ("status", Db.Text), ("updated_at", Db.Bigint), ("available_at", Db.Bigint), ("job_run_id", Db.Text),
        ("reason", Db.Text), ("waiting_wants", Db.Integer));

    /// <summary>A changed want's row.</summary>
    public static void UpsertWant(StoreTransaction tx, WantState s) => tx.Defer(WantRow, $"wants\0{s.WantId}", WantArgs(s));

    /// <summary>A new want's row: a plain insert (no conflict to check for first), which fails on a want that exists.</summary>
    public static void InsertWant(StoreTransaction tx, WantState s) => tx.Defer(NewWantRow, $"wants\0{s.WantId}", WantArgs(s));

    private static object?[] WantArgs(WantState s) =>
    [
        s.WantId, s.Status, JsonSerializer.Serialize(s.Partitions), s.DataTimestamp, s.TtlSeconds, Sql.Arg(s.SlaSeconds),
        s.TtlDeadline, Sql.Arg(s.SlaDeadline), s.SourceType, s.SourceName, Sql.Arg(s.Comment), Sql.Arg(s.ParentWantId),
        s.RootWantId, s.SlaViolated, Sql.Arg(s.SlaViolatedAt), s.CreatedAt, Sql.Arg(s.SatisfiedAt), Sql.Arg(s.FinishedAt), Sql.Arg(s.Reason),
    ];

    /// <summary>The want's state as its <c>wants</c> row has it (null if it has none): what it was created with and its status.</summary>
    public static async Task<WantState?> ReadWantAsync(IDataStore store, string wantId, CancellationToken cancellationToken)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null, """
            SELECT want_id, status, partitions, data_timestamp, ttl_seconds, sla_seconds, source_type, source_name, comment,
                   parent_want_id, root_want_id, sla_violated, sla_violated_at, created_at, satisfied_at, finished_at, reason
              FROM wants WHERE want_id = $1
            """, wantId);
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        if (!await r.ReadAsync(cancellationToken)) return null;
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        long? L(int i) => r.IsDBNull(i) ? null : r.GetInt64(i);
        return new WantState
        {
            WantId = r.GetString(0), Status = r.GetString(1), Partitions = JsonSerializer.Deserialize<List<string>>(r.GetString(2))!,
            DataTimestamp = r.GetInt64(3), TtlSeconds = r.GetInt64(4), SlaSeconds = L(5), SourceType = r.GetString(6), SourceName = r.GetString(7),
            Comment = S(8), ParentWantId = S(9), RootWantId = r.GetString(10), SlaViolated = Convert.ToBoolean(r.GetValue(11), CultureInfo.InvariantCulture),
            SlaViolatedAt = L(12), CreatedAt = r.GetInt64(13), SatisfiedAt = L(14), FinishedAt = L(15), Reason = S(16),
        };
    }

    public static void InsertWantPartitions(StoreTransaction tx, WantState s)
    {
        foreach (var partition in s.Partitions)
            tx.Defer(WantPartitionRow, null, partition, s.WantId); // inserted once and never changed: any order will do
    }

    /// <summary>Fails the turn's commit with <see cref="GrainInterfaces.IdempotencyKeyTakenException"/> if another want holds the key.</summary>
    public static void ClaimIdempotencyKey(StoreTransaction tx, string key, string wantId, string requestHash, long now) =>
        tx.DeferExpecting(1, () => new GrainInterfaces.IdempotencyKeyTakenException(key),
            "INSERT INTO idempotency_keys (key, want_id, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
            key, wantId, requestHash, now);

    public static void UpsertPartition(StoreTransaction tx, PartitionState s) =>
        tx.Defer(PartitionRow, $"partitions\0{s.Ref}", s.Ref, s.Status, s.UpdatedAt, Sql.Arg(s.AvailableAt), Sql.Arg(s.JobRunId), Sql.Arg(s.Reason), s.Waiters.Count);
}
