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

    public async Task<PartitionView?> GetAsync(string partitionRef, CancellationToken cancellationToken) =>
        (await QueryAsync($"SELECT {Columns} FROM partitions WHERE partition_ref = $1", cancellationToken, partitionRef)).FirstOrDefault();

    /// <summary>The partitions of a want, in the want's order; a partition without a row yet is missing.</summary>
    public async Task<IReadOnlyList<PartitionView>> ManyAsync(IReadOnlyList<string> refs, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, PartitionView>(StringComparer.Ordinal);
        foreach (var chunk in refs.Chunk(200))
        {
            var placeholders = string.Join(", ", chunk.Select((_, i) => $"${i + 1}"));
            foreach (var p in await QueryAsync($"SELECT {Columns} FROM partitions WHERE partition_ref IN ({placeholders})", cancellationToken, [.. chunk]))
                found[p.Ref] = p;
        }
        return refs.Select(r => found.TryGetValue(r, out var p) ? p : Missing(r)).ToList();
    }

    public static PartitionView Missing(string partitionRef) => new(partitionRef, PartitionStatusNames.Missing, 0, null, null, null, 0);

    /// <summary>Partitions after <paramref name="after"/> (by ref), optionally by status and full-match pattern.</summary>
    public async Task<(IReadOnlyList<PartitionView> Partitions, string? NextAfter)> ListAsync(
        string? status, PartitionPattern? pattern, int limit, string after, CancellationToken cancellationToken)
    {
        var page = new List<PartitionView>();
        var cursor = after;
        var prefix = pattern?.LiteralPrefix ?? "";
        var end = prefix.Length > 0 ? PartitionPattern.RangeEnd(prefix) : null;
        while (true)
        {
            var args = new List<object?> { cursor };
            var conditions = new List<string> { "partition_ref > $1" };
            if (status is not null) { args.Add(status); conditions.Add($"status = ${args.Count}"); }
            if (prefix.Length > 0) { args.Add(prefix); conditions.Add($"partition_ref >= ${args.Count}"); }
            if (end is not null) { args.Add(end); conditions.Add($"partition_ref < ${args.Count}"); }
            const int chunk = 500;
            args.Add(chunk);
            var rows = await QueryAsync($"SELECT {Columns} FROM partitions WHERE {string.Join(" AND ", conditions)} ORDER BY partition_ref LIMIT ${args.Count}",
                cancellationToken, [.. args]);
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
