using Npgsql;
using NpgsqlTypes;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// A single-row write that a PostgreSQL group commit may send, together with the same write of the other turns of its
/// group, as one statement over arrays: <paramref name="merged"/> takes one array per argument the writer gives to
/// <paramref name="single"/>, in order, of the given <paramref name="columns"/> types (<c>unnest</c> zips them back
/// into rows). One statement's fixed cost (executor start-up, bind, the plan's lookup) for the group instead of one per turn.
/// <para>
/// The merged statement runs at the end of the group's batch, so a write is merged only when no other write of the
/// group names its row (<see cref="StoreTransaction.Defer(MergeableWrite, string?, object?[])"/>): an upsert of a
/// row written twice in one group stays in its place, and so keeps its order.
/// </para>
/// </summary>
public sealed class MergeableWrite(string single, string merged, params NpgsqlDbType[] columns)
{
    /// <summary>The single-row statement: what every store runs when the write is not merged.</summary>
    public string Sql => single;

    /// <summary>
    /// <c>INSERT INTO table (columns) VALUES ($1, …) onConflict</c>, merged as the same insert of <c>unnest</c>'s rows.
    /// </summary>
    public static MergeableWrite Insert(string table, string onConflict, params (string Name, NpgsqlDbType Type)[] columns)
    {
        var names = string.Join(", ", columns.Select(c => c.Name));
        var values = string.Join(", ", columns.Select((_, i) => $"${i + 1}"));
        var arrays = string.Join(", ", columns.Select((c, i) => $"${i + 1}::{c.Type.ToString().ToLowerInvariant()}[]"));
        return new($"INSERT INTO {table} ({names}) VALUES ({values}) {onConflict}",
            $"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {onConflict}", [.. columns.Select(c => c.Type)]);
    }

    internal StoreTransaction.DeferredWrite Merge(IReadOnlyList<(StoreTransaction.DeferredWrite Write, long Shift)> parts)
    {
        var args = new object?[columns.Length];
        for (var c = 0; c < columns.Length; c++)
        {
            var column = c;
            IEnumerable<object?> values = parts.Select(p => p.Write.Args[column] is null or TypedNull or DBNull ? null : p.Write.Args[column]);
            Array array = columns[c] switch
            {
                NpgsqlDbType.Bigint => values.Select(v => v is null ? (long?)null : Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
                NpgsqlDbType.Integer => values.Select(v => v is null ? (int?)null : Convert.ToInt32(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
                NpgsqlDbType.Boolean => values.Select(v => (bool?)v).ToArray(),
                NpgsqlDbType.Text => values.Select(v => (string?)v).ToArray(),
                NpgsqlDbType.Bytea => values.Select(v => (byte[]?)v).ToArray(),
                var other => throw new NotSupportedException($"A mergeable write's column of type {other}."),
            };
            args[c] = new NpgsqlParameter { Value = array, NpgsqlDbType = NpgsqlDbType.Array | columns[c] };
        }
        return new StoreTransaction.DeferredWrite(merged, args, null, null, null);
    }
}
