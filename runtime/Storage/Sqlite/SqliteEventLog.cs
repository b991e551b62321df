using DataBuild.Protos;
using DataBuild.Runtime.EventLog;
using Microsoft.Data.Sqlite;

namespace DataBuild.Runtime.Storage.Sqlite;

internal sealed class SqliteEventLog(TimeProvider clock, SqliteStore store, Action published) : SqlEventLog(clock)
{
    public override async Task<IReadOnlyList<long>> AppendAsync(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events, CancellationToken cancellationToken = default)
    {
        if (events.Count == 0) return [];
        var now = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await using var insertEvent = (SqliteCommand)transaction.CreateCommand(
            "INSERT INTO bel_events (event_type, event_time, payload) VALUES ($t, $ts, $p) RETURNING idx");
        var type = insertEvent.Parameters.Add("$t", SqliteType.Text);
        var time = insertEvent.Parameters.Add("$ts", SqliteType.Integer);
        var payload = insertEvent.Parameters.Add("$p", SqliteType.Blob);
        await using var insertKey = (SqliteCommand)transaction.CreateCommand(
            "INSERT INTO bel_event_keys (kind, key, idx) VALUES ($k, $key, $i)");
        var kindParameter = insertKey.Parameters.Add("$k", SqliteType.Integer);
        var keyParameter = insertKey.Parameters.Add("$key", SqliteType.Text);
        var indexParameter = insertKey.Parameters.Add("$i", SqliteType.Integer);

        var indexes = new List<long>(events.Count);
        foreach (var e in events)
        {
            type.Value = EventTypeNames.Of(e);
            time.Value = now;
            payload.Value = Serialize(e);
            var index = (long)(await insertEvent.ExecuteScalarAsync(cancellationToken))!;
            indexes.Add(index);
            foreach (var (kind, key) in EventKeys.Of(e))
            {
                kindParameter.Value = (short)kind;
                keyParameter.Value = key;
                indexParameter.Value = index;
                await insertKey.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        transaction.EventsAppended += events.Count;
        transaction.OnCommitted(published);
        return indexes;
    }

    protected override async Task<(List<StoredEvent> Rows, long Watermark)> QueryAsync(
        long since, int limit, string conditions, IReadOnlyList<object> parameters, CancellationToken cancellationToken)
    {
        // One statement, one snapshot: the watermark and the rows agree.
        var sql = $"""
            SELECT w.wm, e.idx, e.event_time, e.payload
              FROM (SELECT COALESCE(MAX(idx), 0) + 1 AS wm FROM bel_events) w
              LEFT JOIN (
                  SELECT e.idx, e.event_time, e.payload
                    FROM bel_events e
                   WHERE e.idx > $1{conditions}
                   ORDER BY e.idx
                   LIMIT $2) e ON e.idx < w.wm
             ORDER BY e.idx
            """;
        await using var connection = await store.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$1", since);
        command.Parameters.AddWithValue("$2", limit);
        for (var i = 0; i < parameters.Count; i++) command.Parameters.AddWithValue($"${i + 3}", parameters[i]);
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

    protected override object SetParameter(IReadOnlyCollection<string> values) => System.Text.Json.JsonSerializer.Serialize(values);

    protected override string InSet(string column, int parameter) => $"{column} IN (SELECT value FROM json_each(${parameter}))";
}
