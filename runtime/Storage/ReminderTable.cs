using DataBuild.Runtime.Hosting;
using NpgsqlTypes;

namespace DataBuild.Runtime.Storage;

/// <summary>A reminder as stored. Instants are epoch ms; a period of 0 means one-shot.</summary>
public sealed record ReminderRow(GrainId Grain, string Name, long DueAt, long PeriodMs, long FirstDue, int Attempt, long Version);

/// <summary>
/// Durable reminders. Any silo claims due ones with a lease (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL);
/// each claim and completion bumps the version, which fences a silo whose lease was taken over.
/// </summary>
public sealed class ReminderTable(IDataStore store)
{
    private const string Columns = "grain_type, grain_key, name, due_at, period_ms, first_due, attempt, version";

    /// <summary>Registers or replaces a reminder inside the caller's transaction (deferred to its commit).</summary>
    public static void Upsert(StoreTransaction transaction, GrainId grain, string name, long dueAt, long periodMs) =>
        Write(transaction, grain, name, dueAt, periodMs, null, null, null);

    /// <summary>
    /// Registers or replaces a one-shot reminder already leased to <paramref name="siloId"/>, which will deliver it
    /// itself right after the commit (deferred to the commit). The claim's version is <paramref name="token"/>: a
    /// random fencing token rather than a successor, because the writer cannot learn the row's previous version
    /// without a round trip. Versions are only ever compared for equality, and every later change (a claim after
    /// the lease ran out, a re-registration) moves the version away from the token.
    /// </summary>
    public static ReminderRow UpsertLeased(StoreTransaction transaction, GrainId grain, string name, long dueAt, string siloId, long leaseUntil, long token)
    {
        Write(transaction, grain, name, dueAt, 0, siloId, leaseUntil, token);
        return new ReminderRow(grain, name, dueAt, 0, dueAt, 0, token);
    }

    /// <summary>Unleased (the next version is a successor), or leased with the version <paramref name="token"/>.</summary>
    private static void Write(StoreTransaction transaction, GrainId grain, string name, long dueAt, long periodMs, string? siloId, long? leaseUntil, long? token) =>
        transaction.Defer(new StoreTransaction.DeferredWrite(Upserts.Sql,
            [grain.Type, grain.Key, name, dueAt, periodMs, Sql.Arg(siloId), Sql.Arg(leaseUntil), Sql.Arg(token)], null, null, null,
            Merge: Upserts.Merge, Reminder: new RowWrite(grain, name, token is { } sent && periodMs == 0 ? sent : null, null)));

    // A leased write carries its token as the version ($8); an unleased one moves the version on. A group commit may
    // send the upserts of several turns as one statement, of rows no other write of the group touches.
    private static readonly MergeableWrite Upserts = new("""
        INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
        VALUES ($1, $2, $3, $4, $5, $4, 0, CAST($6 AS text), CAST($7 AS bigint), COALESCE(CAST($8 AS bigint), 1))
        ON CONFLICT (grain_type, grain_key, name) DO UPDATE
           SET due_at = excluded.due_at, period_ms = excluded.period_ms, first_due = excluded.first_due,
               attempt = 0, lease_owner = excluded.lease_owner, lease_until = excluded.lease_until,
               version = COALESCE(CAST($8 AS bigint), reminders.version + 1)
        """, """
        INSERT INTO reminders (grain_type, grain_key, name, due_at, period_ms, first_due, attempt, lease_owner, lease_until, version)
        SELECT s.t, s.k, s.n, s.d, s.p, s.d, 0, s.o, s.u, COALESCE(s.v, 1)
          FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[]) AS s(t, k, n, d, p, o, u, v)
        ON CONFLICT (grain_type, grain_key, name) DO UPDATE
           SET due_at = excluded.due_at, period_ms = excluded.period_ms, first_due = excluded.first_due,
               attempt = 0, lease_owner = excluded.lease_owner, lease_until = excluded.lease_until,
               version = CASE WHEN excluded.lease_owner IS NULL THEN reminders.version + 1 ELSE excluded.version END
        """, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Bigint, NpgsqlDbType.Bigint, NpgsqlDbType.Text,
        NpgsqlDbType.Bigint, NpgsqlDbType.Bigint);

    /// <summary>Removes a reminder inside the caller's transaction (deferred to its commit).</summary>
    public static void Delete(StoreTransaction transaction, GrainId grain, string name) => transaction.Defer(DeleteWrite(grain, name));

    private static StoreTransaction.DeferredWrite DeleteWrite(GrainId grain, string name) =>
        new(Deletes.Sql, [grain.Type, grain.Key, name], null, null, null, Merge: Deletes.Merge, Reminder: new RowWrite(grain, name, null, null));

    // Unchecked removals: under ingest, most are the folds of messages sent and delivered within one group
    // (FoldDeliveredMessages), about one a want; a group commit sends them as one statement (012_reminders_delete_all.sql).
    private static readonly MergeableWrite Deletes = new(
        "DELETE FROM reminders WHERE grain_type = $1 AND grain_key = $2 AND name = $3",
        "SELECT databuild_reminders_delete_all($1, $2, $3)", NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text);

    /// <summary>
    /// The reminder row a deferred write changes: a one-shot message <paramref name="Sent"/> leased with that token, the
    /// removal of a message <paramref name="Delivered"/> on that token, or (both null) any other change.
    /// </summary>
    internal sealed record RowWrite(GrainId Grain, string Name, long? Sent, long? Delivered);

    /// <summary>
    /// A group commit's writes (each with the turn it belongs to) with each message that is sent and delivered within the
    /// group folded: where the only writes of a reminder row in the group are one turn's sending of a message and a later
    /// turn's removal of it on its token, the two become one unchecked removal at the sending's place. The group commits as
    /// one transaction or not at all, so the pair's net effect is exactly that: no row (a message of the same name already
    /// there was replaced by the sending, then removed). Returns, by reference, each write to replace (null: to leave out).
    /// </summary>
    internal static Dictionary<StoreTransaction.DeferredWrite, StoreTransaction.DeferredWrite?> FoldDeliveredMessages(
        IEnumerable<(int Turn, StoreTransaction.DeferredWrite Write)> writes)
    {
        var folds = new Dictionary<StoreTransaction.DeferredWrite, StoreTransaction.DeferredWrite?>(ReferenceEqualityComparer.Instance);
        var byRow = writes.Where(w => w.Write.Reminder is not null).GroupBy(w => (w.Write.Reminder!.Grain, w.Write.Reminder.Name));
        foreach (var row in byRow)
        {
            if (row.Take(3).Count() != 2) continue;
            var (sending, delivery) = (row.First(), row.Last());
            if (sending.Write.Reminder!.Sent is not { } token || delivery.Write.Reminder!.Delivered != token || delivery.Turn <= sending.Turn) continue;
            folds[sending.Write] = DeleteWrite(row.Key.Grain, row.Key.Name);
            folds[delivery.Write] = null;
        }
        return folds;
    }

    public async Task<ReminderRow?> ReadAsync(GrainId grain, string name, CancellationToken cancellationToken = default)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null,
            $"SELECT {Columns} FROM reminders WHERE grain_type = $1 AND grain_key = $2 AND name = $3", grain.Type, grain.Key, name);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Row(reader) : null;
    }

    public async Task<IReadOnlyList<ReminderRow>> ListAsync(GrainId grain, CancellationToken cancellationToken = default)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null,
            $"SELECT {Columns} FROM reminders WHERE grain_type = $1 AND grain_key = $2 ORDER BY name", grain.Type, grain.Key);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<ReminderRow>();
        while (await reader.ReadAsync(cancellationToken)) rows.Add(Row(reader));
        return rows;
    }

    /// <summary>Claims up to <paramref name="limit"/> due reminders (unleased, or whose lease ran out) for this silo.</summary>
    public async Task<IReadOnlyList<ReminderRow>> ClaimDueAsync(string siloId, long nowMs, long leaseMs, int limit, CancellationToken cancellationToken = default)
    {
        await using var transaction = await store.BeginAsync(cancellationToken);
        var sql = transaction.IsPostgres()
            ? $"""
              UPDATE reminders r SET lease_owner = $1, lease_until = $2 + $3, version = r.version + 1
                FROM (SELECT grain_type, grain_key, name FROM reminders
                       WHERE (lease_owner IS NULL AND due_at <= $2) OR (lease_owner IS NOT NULL AND lease_until < $2)
                       ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) c
               WHERE r.grain_type = c.grain_type AND r.grain_key = c.grain_key AND r.name = c.name
              RETURNING r.grain_type, r.grain_key, r.name, r.due_at, r.period_ms, r.first_due, r.attempt, r.version
              """
            : $"""
              UPDATE reminders SET lease_owner = $1, lease_until = $2 + $3, version = version + 1
               WHERE (grain_type, grain_key, name) IN (
                     SELECT grain_type, grain_key, name FROM reminders
                      WHERE (lease_owner IS NULL AND due_at <= $2) OR (lease_owner IS NOT NULL AND lease_until < $2)
                      ORDER BY due_at LIMIT $4)
              RETURNING {Columns}
              """;
        var rows = new List<ReminderRow>();
        await using (var command = transaction.Command(sql, siloId, nowMs, leaseMs, limit))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) rows.Add(Row(reader));
        }
        await transaction.CommitAsync(cancellationToken);
        rows.Sort((a, b) => a.DueAt.CompareTo(b.DueAt));
        return rows;
    }

    /// <summary>
    /// Inside the delivering turn's transaction (deferred to its commit): removes a fired one-shot reminder, or
    /// schedules a periodic one's next tick. If the claim is stale (another silo took the reminder over, or the
    /// grain re-registered it) the commit fails with <paramref name="stale"/>'s exception: the turn must not
    /// commit as a delivery of this claim.
    /// </summary>
    public static void Complete(StoreTransaction transaction, ReminderRow claimed, long? nextDueAt, Func<Exception> stale)
    {
        if (nextDueAt is null)
            transaction.Defer(new StoreTransaction.DeferredWrite("DELETE FROM reminders WHERE grain_type = $1 AND grain_key = $2 AND name = $3 AND version = $4",
                [claimed.Grain.Type, claimed.Grain.Key, claimed.Name, claimed.Version], 1, stale, null,
                Reminder: new RowWrite(claimed.Grain, claimed.Name, null, claimed.Version)));
        else
            transaction.Defer(new StoreTransaction.DeferredWrite("""
                UPDATE reminders SET due_at = $5, attempt = 0, lease_owner = NULL, lease_until = NULL, version = version + 1
                 WHERE grain_type = $1 AND grain_key = $2 AND name = $3 AND version = $4
                """, [claimed.Grain.Type, claimed.Grain.Key, claimed.Name, claimed.Version, nextDueAt.Value], 1, stale, null,
                Reminder: new RowWrite(claimed.Grain, claimed.Name, null, null)));
    }

    /// <summary>After a failed delivery: release the claim and try again at <paramref name="retryAt"/>.</summary>
    public async Task RetryLaterAsync(ReminderRow claimed, long retryAt, CancellationToken cancellationToken = default)
    {
        await using var transaction = await store.BeginAsync(cancellationToken);
        await using (var command = transaction.Command("""
            UPDATE reminders SET due_at = $5, attempt = attempt + 1, lease_owner = NULL, lease_until = NULL, version = version + 1
             WHERE grain_type = $1 AND grain_key = $2 AND name = $3 AND version = $4
            """, claimed.Grain.Type, claimed.Grain.Key, claimed.Name, claimed.Version, retryAt))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>The earliest instant at which some reminder becomes claimable, or null when there are none.</summary>
    public async Task<long?> NextClaimableAtAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null, """
            SELECT MIN(t) FROM (
                SELECT MIN(due_at) AS t FROM reminders WHERE lease_owner IS NULL
                UNION ALL
                SELECT MIN(lease_until) FROM reminders WHERE lease_owner IS NOT NULL) x
            """);
        var value = await command.ExecuteScalarAsync(cancellationToken);
        return value is null or DBNull ? null : Convert.ToInt64(value);
    }

    private static ReminderRow Row(System.Data.Common.DbDataReader r) =>
        new(new GrainId(r.GetString(0), r.GetString(1)), r.GetString(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt32(6), r.GetInt64(7));
}
