using System.Data.Common;
using System.Text;
using DataBuild.Protos;
using DataBuild.Runtime.Storage;
using Google.Protobuf;

namespace DataBuild.Runtime.EventLog;

/// <summary>
/// The parts of the event log both SQL providers share: turning an <see cref="EventFilter"/> into indexed
/// conditions, paging, and checking partition patterns (which SQL only narrows by literal prefix).
/// </summary>
public abstract class SqlEventLog(TimeProvider clock) : IEventLog
{
    protected TimeProvider Clock { get; } = clock;

    public abstract Task<IReadOnlyList<long>> AppendAsync(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events, CancellationToken cancellationToken = default);

    public virtual void AppendDeferred(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events)
    {
        if (events.Count == 0) return;
        var copy = events.ToList();
        transaction.Defer((tx, ct) => AppendAsync(tx, copy, ct));
    }

    /// <summary>
    /// Runs one page query. <paramref name="conditions"/> refers to the event row as <c>e</c> and to parameters
    /// $3 onwards. Returns the rows (ordered by index) and the watermark: every event below it that will
    /// ever exist is visible now.
    /// </summary>
    protected abstract Task<(List<StoredEvent> Rows, long Watermark)> QueryAsync(
        long since, int limit, string conditions, IReadOnlyList<object> parameters, CancellationToken cancellationToken);

    /// <summary>A parameter value for "any of these strings", in the provider's form.</summary>
    protected abstract object SetParameter(IReadOnlyCollection<string> values);

    /// <summary>SQL for "column is one of the strings in parameter $n".</summary>
    protected abstract string InSet(string column, int parameter);

    protected sealed record StoredEvent(long Index, long Time, byte[] Payload);

    protected static byte[] Serialize(DataBuildEvent e)
    {
        var copy = e.Clone();
        copy.Index = 0;
        copy.Timestamp = 0;
        return copy.ToByteArray();
    }

    public async Task<EventPage> ListAsync(EventFilter filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var limit = filter.Limit == 0 ? IEventLog.DefaultLimit : (int)Math.Min(filter.Limit, IEventLog.MaxLimit);
        var patterns = filter.PartitionPatterns.Select(p => new PartitionPattern(p)).ToList();
        foreach (var type in filter.EventTypes)
        {
            if (!EventTypeNames.IsKnown(type))
                throw new ArgumentException($"Unknown event type '{type}'. Known types: {string.Join(", ", EventTypeNames.All)}.");
        }
        var (conditions, parameters) = BuildConditions(filter, patterns);
        var refs = filter.PartitionRefs.ToHashSet(StringComparer.Ordinal);

        // Patterns are decided here, so a chunk may yield fewer matches than rows: read on until the page is full.
        var chunk = patterns.Count == 0 ? limit + 1 : Math.Max(limit + 1, 500);
        var since = checked((long)filter.SinceIdx);
        var page = new EventPage();
        while (true)
        {
            var (rows, watermark) = await QueryAsync(since, chunk, conditions, parameters, cancellationToken);
            foreach (var row in rows)
            {
                var e = DataBuildEvent.Parser.ParseFrom(row.Payload);
                e.Index = (ulong)row.Index;
                e.Timestamp = (ulong)row.Time;
                if (patterns.Count > 0 && !MatchesPartitions(e, refs, patterns)) continue;
                if (page.Events.Count == limit)
                {
                    page.HasMore = true;
                    page.NextIdx = page.Events[^1].Index;
                    return page;
                }
                page.Events.Add(e);
            }
            if (rows.Count < chunk)
            {
                // Everything below the watermark has been seen: a follower may skip to it even if nothing matched.
                var seen = Math.Max((long)filter.SinceIdx, watermark - 1);
                page.NextIdx = (ulong)Math.Max(seen, page.Events.Count > 0 ? (long)page.Events[^1].Index : 0);
                return page;
            }
            since = rows[^1].Index;
        }
    }

    private static bool MatchesPartitions(DataBuildEvent e, HashSet<string> refs, List<PartitionPattern> patterns)
    {
        foreach (var (kind, key) in EventKeys.Of(e))
        {
            if (kind != EventKeyKind.Partition) continue;
            if (refs.Contains(key) || patterns.Any(p => p.Matches(key))) return true;
        }
        return false;
    }

    private (string Sql, List<object> Parameters) BuildConditions(EventFilter filter, List<PartitionPattern> patterns)
    {
        var sql = new StringBuilder();
        var parameters = new List<object>();
        int Add(object value) { parameters.Add(value); return parameters.Count + 2; } // $1 = since, $2 = limit

        if (filter.EventTypes.Count > 0)
            sql.Append(" AND ").Append(InSet("e.event_type", Add(SetParameter(filter.EventTypes))));

        void KeyCondition(EventKeyKind kind, string keyCondition) =>
            sql.Append($" AND e.idx IN (SELECT k.idx FROM bel_event_keys k WHERE k.kind = {(short)kind} AND k.idx > $1 AND ({keyCondition}))");

        if (filter.WantIds.Count > 0) KeyCondition(EventKeyKind.Want, InSet("k.key", Add(SetParameter(filter.WantIds))));
        if (filter.JobLabels.Count > 0) KeyCondition(EventKeyKind.JobLabel, InSet("k.key", Add(SetParameter(filter.JobLabels))));
        if (filter.JobRunIds.Count > 0) KeyCondition(EventKeyKind.JobRun, InSet("k.key", Add(SetParameter(filter.JobRunIds))));

        if (filter.PartitionRefs.Count > 0 || patterns.Count > 0)
        {
            // A pattern without a literal prefix could match any ref: then only "mentions a partition" narrows.
            var unbounded = patterns.Any(p => p.LiteralPrefix.Length == 0 || PartitionPattern.RangeEnd(p.LiteralPrefix) is null);
            var alternatives = new List<string>();
            if (unbounded) alternatives.Add("1 = 1");
            else
            {
                if (filter.PartitionRefs.Count > 0) alternatives.Add(InSet("k.key", Add(SetParameter(filter.PartitionRefs))));
                foreach (var pattern in patterns)
                    alternatives.Add($"(k.key >= ${Add(pattern.LiteralPrefix)} AND k.key < ${Add(PartitionPattern.RangeEnd(pattern.LiteralPrefix)!)})");
            }
            KeyCondition(EventKeyKind.Partition, string.Join(" OR ", alternatives));
        }
        return (sql.ToString(), parameters);
    }
}
