using System.Data.Common;
using System.Text.Json;
using DataBuild.GrainInterfaces;
using DataBuild.Runtime.Storage;

namespace DataBuild.Api.Wants;

/// <summary>Reads of wants from the store's read model: committed data, no grain activations.</summary>
public sealed class WantQueries(IDataStore store)
{
    private const string Columns = """
        w.want_id, w.partitions, w.data_timestamp, w.ttl_seconds, w.sla_seconds, w.ttl_deadline, w.sla_deadline, w.source_type,
        w.source_name, w.comment, w.parent_want_id, w.root_want_id, w.status, w.sla_violated, w.sla_violated_at, w.created_at,
        w.satisfied_at, w.finished_at, w.reason, w.seq
        """;

    public sealed record Filter(string? Status, string? Partition, string? Source, int Limit, long After);

    public async Task<WantView?> GetAsync(string wantId, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync($"SELECT {Columns} FROM wants w WHERE w.want_id = $1", cancellationToken, wantId);
        return rows.Count == 0 ? null : rows[0].Want;
    }

    public async Task<(IReadOnlyList<WantView> Wants, long? NextAfter)> ListAsync(Filter filter, CancellationToken cancellationToken)
    {
        var conditions = new List<string> { "w.seq > $1" };
        var args = new List<object?> { filter.After };
        if (filter.Status is not null) { args.Add(filter.Status); conditions.Add($"w.status = ${args.Count}"); }
        if (filter.Source is not null) { args.Add(filter.Source); conditions.Add($"w.source_type = ${args.Count}"); }
        if (filter.Partition is not null)
        {
            args.Add(filter.Partition);
            conditions.Add($"w.want_id IN (SELECT p.want_id FROM want_partitions p WHERE p.partition_ref = ${args.Count})");
        }
        args.Add(filter.Limit + 1);
        var rows = await QueryAsync($"SELECT {Columns} FROM wants w WHERE {string.Join(" AND ", conditions)} ORDER BY w.seq LIMIT ${args.Count}",
            cancellationToken, [.. args]);
        var more = rows.Count > filter.Limit;
        var page = rows.Take(filter.Limit).ToList();
        return (page.Select(r => r.Want).ToList(), more ? page[^1].Seq : null);
    }

    public async Task<IReadOnlyList<WantView>> ChildrenAsync(string wantId, CancellationToken cancellationToken) =>
        (await QueryAsync($"SELECT {Columns} FROM wants w WHERE w.parent_want_id = $1 ORDER BY w.seq", cancellationToken, wantId)).Select(r => r.Want).ToList();

    /// <summary>The want an Idempotency-Key created, with the hash of the request that created it.</summary>
    public async Task<(string WantId, string RequestHash)?> IdempotencyKeyAsync(string key, CancellationToken cancellationToken)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null, "SELECT want_id, request_hash FROM idempotency_keys WHERE key = $1", key);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetString(0), reader.GetString(1)) : null;
    }

    private async Task<List<(WantView Want, long Seq)>> QueryAsync(string sql, CancellationToken cancellationToken, params object?[] args)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null, sql, args);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<(WantView, long)>();
        while (await reader.ReadAsync(cancellationToken)) rows.Add((Read(reader), reader.GetInt64(19)));
        return rows;
    }

    private static WantView Read(DbDataReader r)
    {
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        long? L(int i) => r.IsDBNull(i) ? null : r.GetInt64(i);
        return new WantView(r.GetString(0), JsonSerializer.Deserialize<List<string>>(r.GetString(1))!, r.GetInt64(2), r.GetInt64(3), L(4),
            r.GetInt64(5), L(6), r.GetString(7), r.GetString(8), S(9), S(10), r.GetString(11), r.GetString(12),
            Convert.ToBoolean(r.GetValue(13)), L(14), r.GetInt64(15), L(16), L(17), S(18));
    }
}
