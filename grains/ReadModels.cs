using DataBuild.Runtime.Storage;
using Db = NpgsqlTypes.NpgsqlDbType;

namespace DataBuild.Grains;

/// <summary>The rows the API reads, written inside the owning grain's turn.</summary>
internal static class ReadModels
{
    // Each read model row is written whole by its grain's turn, so a group commit may send the writes of several turns as
    // one statement over arrays (MergeableInsert), at the end of its batch, for rows no other write of the group names.
    private const string WantColumns = """
        want_id, status, partitions, data_timestamp, ttl_seconds, sla_seconds, ttl_deadline, sla_deadline,
        source_type, source_name, comment, parent_want_id, root_want_id, sla_violated, sla_violated_at,
        created_at, satisfied_at, finished_at, reason
        """;

    private const string WantConflict = """
        ON CONFLICT (want_id) DO UPDATE SET
            status = excluded.status, sla_violated = excluded.sla_violated, sla_violated_at = excluded.sla_violated_at,
            satisfied_at = excluded.satisfied_at, finished_at = excluded.finished_at, reason = excluded.reason
        """;

    private static readonly MergeableInsert WantRow = new(
        $"INSERT INTO wants ({WantColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) {WantConflict}",
        $"""
        INSERT INTO wants ({WantColumns})
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[],
                             $10::text[], $11::text[], $12::text[], $13::text[], $14::boolean[], $15::bigint[], $16::bigint[], $17::bigint[],
                             $18::bigint[], $19::text[])
        {WantConflict}
        """,
        Db.Text, Db.Text, Db.Text, Db.Bigint, Db.Bigint, Db.Bigint, Db.Bigint, Db.Bigint, Db.Text, Db.Text, Db.Text, Db.Text, Db.Text, Db.Boolean, Db.Bigint, Db.Bigint, Db.Bigint, Db.Bigint, Db.Text);

    private static readonly MergeableInsert WantPartitionRow = new(
        "INSERT INTO want_partitions (partition_ref, want_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        "INSERT INTO want_partitions (partition_ref, want_id) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        Db.Text, Db.Text);

    private const string PartitionConflict = """
        ON CONFLICT (partition_ref) DO UPDATE SET
            status = excluded.status, updated_at = excluded.updated_at, available_at = excluded.available_at,
            job_run_id = excluded.job_run_id, reason = excluded.reason, waiting_wants = excluded.waiting_wants
        """;

    private static readonly MergeableInsert PartitionRow = new(
        $"INSERT INTO partitions (partition_ref, status, updated_at, available_at, job_run_id, reason, waiting_wants) VALUES ($1, $2, $3, $4, $5, $6, $7) {PartitionConflict}",
        $"""
        INSERT INTO partitions (partition_ref, status, updated_at, available_at, job_run_id, reason, waiting_wants)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::integer[])
        {PartitionConflict}
        """,
        Db.Text, Db.Text, Db.Bigint, Db.Bigint, Db.Text, Db.Text, Db.Integer);

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
