using DataBuild.Runtime.Storage;
using Db = NpgsqlTypes.NpgsqlDbType;

namespace DataBuild.Grains;

/// <summary>The rows the API reads, written inside the owning grain's turn.</summary>
internal static class ReadModels
{
    // Each read model row is written whole by its grain's turn, so a group commit may send the writes of several turns as
    // one statement over arrays (MergeableWrite), at the end of its batch, for rows no other write of the group names.
    private static readonly MergeableWrite WantRow = MergeableWrite.Insert("wants", """
        ON CONFLICT (want_id) DO UPDATE SET
            status = excluded.status, sla_violated = excluded.sla_violated, sla_violated_at = excluded.sla_violated_at,
            satisfied_at = excluded.satisfied_at, finished_at = excluded.finished_at, reason = excluded.reason
        """,
        ("want_id", Db.Text), ("status", Db.Text), ("partitions", Db.Text), ("data_timestamp", Db.Bigint), ("ttl_seconds", Db.Bigint),
        ("sla_seconds", Db.Bigint), ("ttl_deadline", Db.Bigint), ("sla_deadline", Db.Bigint), ("source_type", Db.Text), ("source_name", Db.Text),
        ("comment", Db.Text), ("parent_want_id", Db.Text), ("root_want_id", Db.Text), ("sla_violated", Db.Boolean), ("sla_violated_at", Db.Bigint),
        ("created_at", Db.Bigint), ("satisfied_at", Db.Bigint), ("finished_at", Db.Bigint), ("reason", Db.Text));

    private static readonly MergeableWrite WantPartitionRow = MergeableWrite.Insert("want_partitions", "ON CONFLICT DO NOTHING",
        ("partition_ref", Db.Text), ("want_id", Db.Text));

    private static readonly MergeableWrite PartitionRow = MergeableWrite.Insert("partitions", """
        ON CONFLICT (partition_ref) DO UPDATE SET
            status = excluded.status, updated_at = excluded.updated_at, available_at = excluded.available_at,
            job_run_id = excluded.job_run_id, reason = excluded.reason, waiting_wants = excluded.waiting_wants
        """,
        ("partition_ref", Db.Text), ("status", Db.Text), ("updated_at", Db.Bigint), ("available_at", Db.Bigint), ("job_run_id", Db.Text),
        ("reason", Db.Text), ("waiting_wants", Db.Integer));

    public static void UpsertWant(StoreTransaction tx, WantState s) =>
        tx.Defer(WantRow, $"wants\0{s.WantId}", s.WantId, s.Status, System.Text.Json.JsonSerializer.Serialize(s.Partitions), s.DataTimestamp, s.TtlSeconds, Sql.Arg(s.SlaSeconds),
            s.TtlDeadline, Sql.Arg(s.SlaDeadline), s.SourceType, s.SourceName, Sql.Arg(s.Comment), Sql.Arg(s.ParentWantId),
            s.RootWantId, s.SlaViolated, Sql.Arg(s.SlaViolatedAt), s.CreatedAt, Sql.Arg(s.SatisfiedAt), Sql.Arg(s.FinishedAt), Sql.Arg(s.Reason));

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
