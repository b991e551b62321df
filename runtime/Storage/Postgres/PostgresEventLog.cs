using DataBuild.Protos;
using DataBuild.Runtime.EventLog;
using Npgsql;
using NpgsqlTypes;

namespace DataBuild.Runtime.Storage.Postgres;

internal sealed class PostgresEventLog(TimeProvider clock, NpgsqlDataSource dataSource, Action published) : SqlEventLog(clock)
{
    // Indexes are (transaction base) + position within the transaction; see 001_event_log.sql.
    private const int MaxEventsPerTransaction = 1 << 16;

    // A transaction's events and their keys, in one statement; it returns the events' indexes. $1 is added to every
    // position: a group commit that puts several turns in one transaction moves each turn past the events of the
    // turns before it (an offset of 0 otherwise).
    private const string InsertEvents = """
        WITH b AS (SELECT bel_txn_base() + $1 AS base),
             e AS (INSERT INTO bel_events (idx, event_type, event_time, payload)
                   SELECT b.base + s.n, s.t, s.ts, s.p
                     FROM b, unnest($2::bigint[], $3::text[], $4::bigint[], $5::bytea[]) AS s(n, t, ts, p)
                   RETURNING idx),
             k AS (INSERT INTO bel_event_keys (kind, key, idx)
                   SELECT s.kind, s.key, b.base + s.n
                     FROM b, unnest($6::smallint[], $7::text[], $8::bigint[]) AS s(kind, key, n))
        SELECT idx FROM e ORDER BY idx
        """;

    public override async Task<IReadOnlyList<long>> AppendAsync(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events, CancellationToken cancellationToken = default)
    {
        if (events.Count == 0) return [];
        var args = Rows(transaction, events);
        await transaction.FlushAsync(cancellationToken);
        await using var command = new NpgsqlCommand(InsertEvents, (NpgsqlConnection)transaction.Connection, (NpgsqlTransaction)transaction.Transaction);
        foreach (var arg in args) command.Parameters.Add(arg as NpgsqlParameter ?? new NpgsqlParameter { Value = arg });
        var indexes = new List<long>(events.Count);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) indexes.Add(reader.GetInt64(0));
        return indexes;
    }

    public override void AppendDeferred(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events)
    {
        if (events.Count == 0) return;
        transaction.DeferPositioned(0, MergeInserts, InsertEvents, Rows(transaction, events));
    }

    /// <summary>
    /// The event inserts of a group's turns as one statement (<see cref="GroupCommit"/>): each turn's positions moved by
    /// its shift. One statement's fixed cost instead of one per turn; this insert was the most expensive of a turn.
    /// </summary>
    private static StoreTransaction.DeferredWrite MergeInserts(IReadOnlyList<(StoreTransaction.DeferredWrite Write, long Shift)> parts)
    {
        T[] Concat<T>(int arg) => [.. parts.SelectMany(p => (T[])((NpgsqlParameter)p.Write.Args[arg]!).Value!)];
        long[] Positions(int arg) => [.. parts.SelectMany(p => ((long[])((NpgsqlParameter)p.Write.Args[arg]!).Value!).Select(n => n + p.Shift))];
        var args = Args(Positions(1), Concat<string>(2), Concat<long>(3), Concat<byte[]>(4), Concat<short>(5), Concat<string>(6), Positions(7));
        return new StoreTransaction.DeferredWrite(InsertEvents, args, null, null, null, OffsetArg: 0);
    }

    /// <summary>Numbers the events within the transaction and returns the arguments of <see cref="InsertEvents"/> (offset 0).</summary>
    private object?[] Rows(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events)
    {
        var first = transaction.EventsAppended;
        if (first + events.Count > MaxEventsPerTransaction)
            throw new InvalidOperationException($"A transaction may append at most {MaxEventsPerTransaction} events.");

        var now = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        var positions = new long[events.Count];
        var types = new string[events.Count];
        var times = new long[events.Count];
        var payloads = new byte[events.Count][];
        var keyPositions = new List<long>();
        var keyKinds = new List<short>();
        var keyValues = new List<string>();
        for (var i = 0; i < events.Count; i++)
        {
            positions[i] = first + i;
            types[i] = EventTypeNames.Of(events[i]);
            times[i] = now;
            payloads[i] = Serialize(events[i]);
            foreach (var (kind, key) in EventKeys.Of(events[i]))
            {
                keyPositions.Add(first + i);
                keyKinds.Add((short)kind);
                keyValues.Add(key);
            }
        }
        transaction.EventsAppended = first + events.Count;
        transaction.OnCommitted(published);
        return Args(positions, types, times, payloads, [.. keyKinds], [.. keyValues], [.. keyPositions]);
    }

    /// <summary>The arguments of <see cref="InsertEvents"/> (offset 0), in its order.</summary>
    private static object?[] Args(long[] positions, string[] types, long[] times, byte[][] payloads, short[] keyKinds, string[] keyValues, long[] keyPositions) =>
    [
        0L,
        new NpgsqlParameter { Value = positions, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint },
        new NpgsqlParameter { Value = types, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
        new NpgsqlParameter { Value = times, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint },
        new NpgsqlParameter { Value = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea },
        new NpgsqlParameter { Value = keyKinds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint },
        new NpgsqlParameter { Value = keyValues, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
        new NpgsqlParameter { Value = keyPositions, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint },
    ];

    protected override async Task<(List<StoredEvent> Rows, long Watermark)> QueryAsync(
        long since, int limit, string conditions, IReadOnlyList<object> parameters, CancellationToken cancellationToken)
    {
        // One statement, one snapshot: the watermark and the rows agree.
        var sql = $"""
            SELECT w.wm, e.idx, e.event_time, e.payload
              FROM (SELECT bel_watermark() AS wm) w
              LEFT JOIN LATERAL (
                  SELECT e.idx, e.event_time, e.payload
                    FROM bel_events e
                   WHERE e.idx > $1 AND e.idx < w.wm{conditions}
                   ORDER BY e.idx
                   LIMIT $2) e ON true
             ORDER BY e.idx
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = since, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter { Value = limit, NpgsqlDbType = NpgsqlDbType.Integer });
        foreach (var p in parameters) command.Parameters.Add(new NpgsqlParameter { Value = p });
        var rows = new List<StoredEvent>();
        long watermark = 0;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            watermark = reader.GetInt64(0);
            if (!reader.IsDBNull(1)) rows.Add(new StoredEvent(reader.GetInt64(1), reader.GetInt64(2), (byte[])reader[3]));
        }
        return (rows, watermark);
    }

    protected override object SetParameter(IReadOnlyCollection<string> values) => values.ToArray();

    protected override string InSet(string column, int parameter) => $"{column} = ANY(${parameter}::text[])";
}
