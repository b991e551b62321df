using DataBuild.Protos;
using DataBuild.Runtime.EventLog;
using DataBuild.Runtime.Storage;
using DataBuild.Runtime.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Primitives;

namespace DataBuild.Api;

/// <summary><c>GET /api/v1/events</c>: the build event log, filtered and paged; with wait_seconds a long poll.</summary>
public static class EventsEndpoints
{
    public const int MaxWaitSeconds = 60;
    // Safety net under LISTEN/NOTIFY: a long poll re-reads at least this often.
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(1);

    public static RouteGroupBuilder MapEvents(this RouteGroupBuilder api)
    {
        api.MapGet("/events", ListAsync)
            .WithName("ListEvents")
            .WithSummary("Build events after an index, filtered; long-polls with wait_seconds.");
        return api;
    }

    private static async Task<IResult> ListAsync(HttpRequest request, IDataStore store, IHostApplicationLifetime lifetime, CancellationToken cancellationToken)
    {
        var q = request.Query;
        var filter = new EventFilter();
        if (!TryULong(q["after"], "after", out var after, out var error)) return error!;
        filter.SinceIdx = after;
        if (!TryULong(q["limit"], "limit", out var limit, out error)) return error!;
        if (limit > IEventLog.MaxLimit)
            return Problems.BadRequest("Invalid limit", $"limit must be between 1 and {IEventLog.MaxLimit}; got {limit}.");
        filter.Limit = (uint)limit;
        if (!TryULong(q["wait_seconds"], "wait_seconds", out var wait, out error)) return error!;
        if (wait > MaxWaitSeconds)
            return Problems.BadRequest("Invalid wait_seconds", $"wait_seconds must be between 0 and {MaxWaitSeconds}; got {wait}.");

        filter.EventTypes.AddRange(List(q["types"]));
        filter.WantIds.AddRange(List(q["want_id"]));
        filter.PartitionRefs.AddRange(List(q["partition"], split: false));
        filter.PartitionPatterns.AddRange(List(q["partition_pattern"], split: false));
        filter.JobLabels.AddRange(List(q["job_label"]));
        filter.JobRunIds.AddRange(List(q["job_run_id"]));

        var deadline = DateTime.UtcNow.AddSeconds(wait);
        try
        {
            while (true)
            {
                var appended = store.EventsAppended.Next;
                var page = await store.Events.ListAsync(filter, cancellationToken);
                var remaining = deadline - DateTime.UtcNow;
                // A stopping silo answers its followers at once (they poll again, elsewhere) rather than hold its
                // stop for up to a minute.
                if (page.Events.Count > 0 || remaining <= TimeSpan.Zero || lifetime.ApplicationStopping.IsCancellationRequested)
                    return Results.Bytes(EventJson.Page(page), "application/json");
                filter.SinceIdx = page.NextIdx;
                DataBuildMetrics.EventLongPollWaiting(+1);
                try
                {
                    using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
                    await Task.WhenAny(appended, Task.Delay(remaining < Recheck ? remaining : Recheck, wake.Token));
                }
                finally { DataBuildMetrics.EventLongPollWaiting(-1); }
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        catch (ArgumentException e)
        {
            return Problems.BadRequest("Invalid event filter", e.Message);
        }
    }

    private static IEnumerable<string> List(StringValues values, bool split = true) =>
        values.SelectMany(v => split ? (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [v ?? ""])
              .Where(v => v.Length > 0);

    private static bool TryULong(StringValues values, string name, out ulong value, out IResult? error)
    {
        value = 0;
        error = null;
        if (values.Count == 0 || string.IsNullOrEmpty(values[0])) return true;
        if (values.Count == 1 && ulong.TryParse(values[0], System.Globalization.NumberStyles.None, null, out value)) return true;
        error = Problems.BadRequest($"Invalid {name}", $"{name} must be one non-negative whole number; got '{values}'.");
        return false;
    }
}
