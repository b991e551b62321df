using Npgsql;
using NpgsqlTypes;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// A single-row INSERT (or upsert) that a PostgreSQL group commit may send, together with the same insert of the other
/// turns of its group, as one statement over arrays: <paramref name="merged"/> takes one array per argument of
/// <paramref name="single"/>, in order, of the given <paramref name="columns"/> types (<c>unnest</c> zips them back into
/// rows). One statement's fixed cost (executor start-up, bind, the plan's lookup) for the group instead of one per turn.
/// <para>
/// The merged statement runs at the end of the group's batch, so a write is merged only when no other write of the
/// group names its row (<see cref="StoreTransaction.Defer(MergeableInsert, string?, object?[])"/>): an upsert of a
/// row written twice in one group stays in its place, and so keeps its order.
/// </para>
/// </summary>
public sealed class MergeableInsert(string single, string merged, params NpgsqlDbType[] columns)
{
    /// <summary>The single-row statement: what every store runs when the write is not merged.</summary>
    public string Sql => single;

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
                var other => throw new NotSupportedException($"A mergeable insert's column of type {other}."),
            };
            args[c] = new NpgsqlParameter { Value = array, NpgsqlDbType = NpgsqlDbType.Array | columns[c] };
        }
        return new StoreTransaction.DeferredWrite(merged, args, null, null, null);
    }
}
