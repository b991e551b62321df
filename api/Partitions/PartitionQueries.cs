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
        (await QueryAsync($"SELECT {Columns} FROM partitions WHERE partition_ref = $1", cancellationToken, partitionRef)).FirstOrDefault()
        ?? (await QueryAsync(Unwritten("wp.partition_ref = $1"), cancellationToken, partitionRef)).FirstOrDefault();

    /// <summary>The partitions of a want, in the want's order; a partition nothing has named yet is missing.</summary>
    public async Task<IReadOnlyList<PartitionView>> ManyAsync(IReadOnlyList<string> refs, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, PartitionView>(StringComparer.Ordinal);
        foreach (var chunk in refs.Chunk(200))
        {
            foreach (var p in await QueryAsync($"SELECT {Columns} FROM partitions WHERE partition_ref IN ({Placeholders(chunk.Length)})", cancellationToken, [.. chunk]))
                found[p.Ref] = p;
            // Only the refs without a row are looked for among the wants' (a written partition's wants are not read).
            var unwritten = chunk.Where(r => !found.ContainsKey(r)).ToArray();
            if (unwritten.Length == 0) continue;
            foreach (var p in await QueryAsync(Unwritten($"wp.partition_ref IN ({Placeholders(unwritten.Length)})"), cancellationToken, [.. unwritten]))
                found[p.Ref] = p;
        }
        return refs.Select(r => found.TryGetValue(r, out var p) ? p : Missing(r)).ToList();
    }

    private static string Placeholders(int count) => string.Join(", ", Enumerable.Range(1, count).Select(i => $"${i}"));

    public static PartitionView Missing(string partitionRef) => new(partitionRef, PartitionStatusNames.Missing, 0, null, null, null, 0);

    /// <summary>
    /// Partitions after <paramref name="after"/> (by ref), optionally by status and full-match pattern: those with a row,
    /// and the missing ones that only wants name.
    /// </summary>
    public async Task<(IReadOnlyList<PartitionView> Partitions, string? NextAfter)> ListAsync(
        string? status, PartitionPattern? pattern, int limit, string after, CancellationToken cancellationToken)
    {
        const int chunk = 500;
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
            var statusFilter = "";
            if (status is not null) { args.Add(status); statusFilter = $" AND status = ${args.Count}"; }
            string Written() => On("partition_ref") + statusFilter;
            // With the partitions only wants name, the chunk ends at the 500th written row it would return, if there is one,
            // and neither side reads past it: the wants of partitions that have rows are read a chunk at a time, not the
            // whole want_partitions. (Listing only status=missing past the last missing row still reads the want_partitions
            // rows after it, until it finds a chunk of partitions without rows or runs out.)
            string? bound = null;
            if (unwritten)
            {
                bound = await RefAsync($"SELECT partition_ref FROM partitions WHERE {Written()} ORDER BY partition_ref LIMIT 1 OFFSET ${args.Count + 1}",
                    cancellationToken, [.. args, chunk - 1]);
                if (bound is not null) { args.Add(bound); range.Add($"<= ${args.Count}"); }
            }
            var written = Written();
            args.Add(chunk);
            var limitArg = $"${args.Count}";
            // Each side ordered and limited on its own.
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
            if (rows.Count < chunk) return (page, null); // a bound chunk holds a full chunk of written rows
            cursor = rows[^1].Ref;
        }
    }

    /// <summary>The one ref <paramref name="sql"/> selects, or null.</summary>
    private async Task<string?> RefAsync(string sql, CancellationToken cancellationToken, params object?[] args)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null, sql, args);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
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
