using DataBuild.GrainInterfaces;
using DataBuild.Runtime.EventLog;
using DataBuild.Runtime.Storage;

namespace DataBuild.Api.Partitions;

/// <summary>Reads of partitions from the store's read model.</summary>
public sealed class PartitionQueries(IDataStore store)
{
    // Waiting wants are counted from the wants themselves: a partition no job builds is not told of the wants that wait on
    // it quietly (QuietWaits), so its grain's own count leaves them out.
    private static readonly string Columns = $"""
        partition_ref, status, updated_at, available_at, job_run_id, reason,
        CASE WHEN status = 'available' THEN 0 ELSE (SELECT count(*) FROM {QuietWaits.WantsWaitingOn("partitions.partition_ref")}) END
        """;

    /// <summary>
    /// SQL: the partitions that wants wait on but that have no row (no turn of their grain has written one: a want of a
    /// partition no job builds waits on it quietly), as rows of the same columns, for the refs <paramref name="condition"/>
    /// (on <c>wp.partition_ref</c>) selects. Each is missing since its first want was created.
    /// </summary>
    private static string Unwritten(string condition) => $"""
        SELECT wp.partition_ref, 'missing', min(w.created_at), CAST(NULL AS bigint), CAST(NULL AS text), CAST(NULL AS text),
               sum(CASE WHEN w.status IN {QuietWaits.WaitingStatuses} THEN 1 ELSE 0 END)
          FROM want_partitions wp JOIN wants w ON w.want_id = wp.want_id
         WHERE {condition} AND NOT EXISTS (SELECT 1 FROM partitions p WHERE p.partition_ref = wp.partition_ref)
         GROUP BY wp.partition_ref
        """;

    public async Task<PartitionView?> GetAsync(string partitionRef, CancellationToken cancellationToken) =>
        (await QueryAsync($"SELECT {Columns} FROM partitions WHERE partition_ref = $1 UNION ALL {Unwritten("wp.partition_ref = $1")}",
            cancellationToken, partitionRef)).FirstOrDefault();

    /// <summary>The partitions of a want, in the want's order; a partition nothing has named yet is missing.</summary>
    public async Task<IReadOnlyList<PartitionView>> ManyAsync(IReadOnlyList<string> refs, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, PartitionView>(StringComparer.Ordinal);
        foreach (var chunk in refs.Chunk(200))
        {
            var placeholders = string.Join(", ", chunk.Select((_, i) => $"${i + 1}"));
            var sql = $"SELECT {Columns} FROM partitions WHERE partition_ref IN ({placeholders}) UNION ALL {Unwritten($"wp.partition_ref IN ({placeholders})")}";
            foreach (var p in await QueryAsync(sql, cancellationToken, [.. chunk]))
                found[p.Ref] = p;
        }
        return refs.Select(r => found.TryGetValue(r, out var p) ? p : Missing(r)).ToList();
    }

    public static PartitionView Missing(string partitionRef) => new(partitionRef, PartitionStatusNames.Missing, 0, null, null, null, 0);

    /// <summary>
    /// Partitions after <paramref name="after"/> (by ref), optionally by status and full-match pattern: those with a row,
    /// and the missing ones that only wants name.
    /// </summary>
    public async Task<(IReadOnlyList<PartitionView> Partitions, string? NextAfter)> ListAsync(
        string? status, PartitionPattern? pattern, int limit, string after, CancellationToken cancellationToken)
    {
        var page = new List<PartitionView>();
        var cursor = after;
        var prefix = pattern?.LiteralPrefix ?? "";
        var end = prefix.Length > 0 ? PartitionPattern.RangeEnd(prefix) : null;
        var unwritten = status is null or PartitionStatusNames.Missing;
        while (true)
        {
            var args = new List<object?> { cursor };
            var range = new List<string> { "> $1" };
            if (prefix.Length > 0) { args.Add(prefix); range.Add($">= ${args.Count}"); }
            if (end is not null) { args.Add(end); range.Add($"< ${args.Count}"); }
            string On(string column) => string.Join(" AND ", range.Select(r => $"{column} {r}"));
            var written = On("partition_ref");
            if (status is not null) { args.Add(status); written += $" AND status = ${args.Count}"; }
            const int chunk = 500;
            args.Add(chunk);
            var limitArg = $"${args.Count}";
            // Each side ordered and limited on its own, so that each reads at most a chunk past the cursor.
            var sql = $"SELECT * FROM (SELECT {Columns} FROM partitions WHERE {written} ORDER BY partition_ref LIMIT {limitArg}) AS written"
                + (unwritten ? $" UNION ALL SELECT * FROM ({Unwritten(On("wp.partition_ref"))} ORDER BY wp.partition_ref LIMIT {limitArg}) AS unwritten" : "")
                + $" ORDER BY 1 LIMIT {limitArg}";
            var rows = await QueryAsync(sql, cancellationToken, [.. args]);
            foreach (var row in rows)
            {
                if (pattern is not null && !pattern.Matches(row.Ref)) continue;
                if (page.Count == limit) return (page, page[^1].Ref);
                page.Add(row);
            }
            if (rows.Count < chunk) return (page, null);
            cursor = rows[^1].Ref;
        }
    }

    private async Task<List<PartitionView>> QueryAsync(string sql, CancellationToken cancellationToken, params object?[] args)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null, sql, args);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<PartitionView>();
        while (await reader.ReadAsync(cancellationToken))
            rows.Add(new PartitionView(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetInt64(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), Convert.ToInt32(reader.GetValue(6))));
        return rows;
    }
}
