using NpgsqlTypes;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// Wants waiting on a partition that no job of the graph builds (external, or another graph's), without a turn of the
/// partition's grain. Such a partition does nothing when a want arrives but note it, so the want's commit notes it in
/// the store instead (its <c>want_partitions</c> row, written by the want), and the partition finds these quiet waiters
/// when it becomes available. The two are ordered so that no want is missed: a want that checks the partition's status
/// while it is becoming available, or after, sends its "waiting" message as before, which the partition's turn answers.
/// On PostgreSQL a lock per partition does the ordering (013_quiet_waits.sql); SQLite has one writer at a time.
/// </summary>
public static class QuietWaits
{
    // Grain type names, as the grains declare them (grains are not visible from here).
    private const string PartitionGrainType = "partition";
    private const string WantGrainType = "want";

    /// <summary>
    /// SQL: the wants waiting on the partition whose ref is <paramref name="partitionRef"/> (an expression), as
    /// <c>wp.want_id</c>: those whose <c>want_partitions</c> row names it and that have not ended.
    /// </summary>
    public static string WantsWaitingOn(string partitionRef) => $"""
        want_partitions wp JOIN wants w ON w.want_id = wp.want_id
         WHERE wp.partition_ref = {partitionRef} AND w.status IN {WaitingStatuses}
        """;

    /// <summary>SQL: the statuses of a want that has not ended, as a list for <c>IN</c>.</summary>
    public const string WaitingStatuses = "('idle', 'building', 'upstream_building')";

    private static readonly MergeableWrite Wait = new(
        "SELECT databuild_wait_quietly(ARRAY[$1::text], ARRAY[$2::text], ARRAY[$3::bigint])",
        "SELECT databuild_wait_quietly($1::text[], $2::text[], $3::bigint[])",
        NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Bigint);

    /// <summary>
    /// Within a new want's commit (which also writes its <c>want_partitions</c> row): sends the partition
    /// <paramref name="waitingMessage"/> (an unleased reminder due at <paramref name="now"/>) only if it is available
    /// already or becoming available; otherwise the want waits quietly. A partition with no <c>partitions</c> row yet is
    /// missing, and is given none here: the API lists it from <c>want_partitions</c>.
    /// </summary>
    public static void WaitQuietly(StoreTransaction tx, IDataStore store, string partitionRef, string waitingMessage, long now)
    {
        if (tx.IsPostgres)
        {
            // Merged across a group's turns like a single-row write; it names no row, since two wants may wait on one partition.
            tx.Defer(Wait, null, partitionRef, waitingMessage, now);
            return;
        }
        tx.Defer($"""
            INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
            SELECT '{PartitionGrainType}', $1, $2, $3, 0, $3, 0, NULL, NULL, 1
             WHERE EXISTS (SELECT 1 FROM partitions WHERE partition_ref = $1 AND status <> 'missing')
            {OnConflict}
            """, partitionRef, waitingMessage, now);
        tx.OnCommitted(store.PublishRemindersChanged); // one process, one writer: a local wake-up costs one claim query
    }

    /// <summary>
    /// Within the commit of a partition's move to available: sends <paramref name="availableMessage"/> (an unleased reminder
    /// due at <paramref name="sentAt"/>) to every want still waiting on it quietly, except those in <paramref name="told"/>,
    /// which the partition's turn tells itself.
    /// </summary>
    public static void TellQuietWaiters(StoreTransaction tx, IDataStore store, string partitionRef, string availableMessage, long sentAt,
        IReadOnlyCollection<string> told)
    {
        if (tx.IsPostgres)
        {
            tx.Defer("SELECT databuild_tell_quiet_waiters($1, $2, $3, $4)", partitionRef, availableMessage, sentAt,
                new Npgsql.NpgsqlParameter { Value = told.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            return;
        }
        tx.Defer($"""
            INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
            SELECT '{WantGrainType}', wp.want_id, $2, $3, 0, $3, 0, NULL, NULL, 1
              FROM {WantsWaitingOn("$1")}
               AND wp.want_id NOT IN (SELECT value FROM json_each($4))
            {OnConflict}
            """, partitionRef, availableMessage, sentAt, System.Text.Json.JsonSerializer.Serialize(told));
        tx.OnCommitted(store.PublishRemindersChanged);
    }

    private const string OnConflict = """
        ON CONFLICT (grain_type, grain_key, name) DO UPDATE
           SET due_at = excluded.due_at, period_ms = 0, first_due = excluded.first_due, attempt = 0,
               lease_owner = NULL, lease_until = NULL, version = reminders.version + 1
        """;

    /// <summary>
    /// The wants waiting quietly on a partition now (read outside any transaction): a partition becoming available tells
    /// these in its turn, so that its event names them; <see cref="TellQuietWaiters"/> then finds any that arrive meanwhile.
    /// </summary>
    public static async Task<IReadOnlyList<string>> ReadAsync(IDataStore store, string partitionRef, CancellationToken cancellationToken = default)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null, $"SELECT wp.want_id FROM {WantsWaitingOn("$1")}", partitionRef);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var wants = new List<string>();
        while (await reader.ReadAsync(cancellationToken)) wants.Add(reader.GetString(0));
        return wants;
    }
}
