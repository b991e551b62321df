using DataBuild.Protos;
using DataBuild.Runtime.Storage;

namespace DataBuild.Runtime.EventLog;

/// <summary>The build event log: append-only, indexed so that a follower reading forward never misses an event.</summary>
public interface IEventLog
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 10_000;

    /// <summary>
    /// Appends events inside the caller's transaction; they become visible when it commits and vanish if it
    /// rolls back. Index and timestamp are assigned here. Returns the indexes, in order.
    /// </summary>
    Task<IReadOnlyList<long>> AppendAsync(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="AppendAsync"/>, but deferred: sent with the transaction's other deferred writes (no round trip of its own).</summary>
    void AppendDeferred(StoreTransaction transaction, IReadOnlyList<DataBuildEvent> events);

    /// <summary>
    /// Events with index &gt; <c>filter.since_idx</c> that match the filter, oldest first, at most <c>limit</c>.
    /// <c>next_idx</c> continues after this page; an event committed later always gets a greater index.
    /// </summary>
    Task<EventPage> ListAsync(EventFilter filter, CancellationToken cancellationToken = default);
}
