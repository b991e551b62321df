using System.Diagnostics.Metrics;

namespace DataBuild.Runtime.Telemetry;

/// <summary>
/// DataBuild's own instruments (meter "DataBuild"), served with the runtime's and ASP.NET Core's at <c>GET /metrics</c>.
/// One meter per process: silos started in one test process share it. Each instrument's tags are named here only.
/// </summary>
public static class DataBuildMetrics
{
    public const string MeterName = "DataBuild";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> GrainTurns = Meter.CreateCounter<long>("databuild.grain.turns", description: "Grain turns by grain type and outcome");

    private static readonly Histogram<long> CommitGroupTurns = Meter.CreateHistogram<long>("databuild.store.commit_group.turns",
        description: "Turns committed together in one PostgreSQL transaction");

    private static readonly Histogram<double> CommitGroupDuration = Meter.CreateHistogram<double>("databuild.store.commit_group.duration", unit: "s",
        description: "Round trip of one PostgreSQL group commit");

    private static readonly Counter<long> ReminderDeliveries = Meter.CreateCounter<long>("databuild.reminder.deliveries",
        description: "Reminder and message deliveries by outcome");

    private static readonly UpDownCounter<long> EventLongPollsWaiting = Meter.CreateUpDownCounter<long>("databuild.events.long_polls.waiting",
        description: "Event-log long polls waiting for an event");

    private static readonly Counter<long> JobRunsStarted = Meter.CreateCounter<long>("databuild.job_run.started", description: "Job runs started on this silo");

    private static readonly Counter<long> JobRunsHandedBack = Meter.CreateCounter<long>("databuild.job_run.handed_back",
        description: "Job runs this silo handed back to the queue as it stopped cleanly");

    private static readonly Counter<long> JobRunsUndone = Meter.CreateCounter<long>("databuild.job_run.undone",
        description: "Job runs started ahead of their hand-off's commit whose commit then failed: stopped, and not recorded");

    private static readonly Histogram<double> JobRunDuration = Meter.CreateHistogram<double>("databuild.job_run.duration", unit: "s",
        description: "Job runs finished on this silo: process start to exit, by job and status");

    /// <summary>
    /// A grain turn ended: committed, failed, refused (an optimistic hand-off refused at the commit; the turn runs again) or
    /// declined (a turn run ahead of its message's commit needed to read; it runs again once the message has committed).
    /// </summary>
    public static void TurnEnded(string grainType, string outcome) =>
        GrainTurns.Add(1, new KeyValuePair<string, object?>("grain_type", grainType), new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>A PostgreSQL group commit went through: how many turns shared its transaction, and its round trip with the WAL flush.</summary>
    public static void CommitGroupCommitted(int turns, TimeSpan roundTrip)
    {
        CommitGroupTurns.Record(turns);
        CommitGroupDuration.Record(roundTrip.TotalSeconds);
    }

    /// <summary>A reminder or grain message was delivered (joined: in its sender's commit), found stale, or failed.</summary>
    public static void ReminderDelivery(string outcome) => ReminderDeliveries.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>A follower of the event log (GET /api/v1/events?wait_seconds=) starts (+1) or stops (-1) waiting for an event.</summary>
    public static void EventLongPollWaiting(int change) => EventLongPollsWaiting.Add(change);

    /// <summary>This silo started a job process.</summary>
    public static void JobRunStarted(string job) => JobRunsStarted.Add(1, new KeyValuePair<string, object?>("job", job));

    /// <summary>A clean stop handed a run back (its process killed, or not started), for any silo to run again at once.</summary>
    public static void JobRunHandedBack(string job) => JobRunsHandedBack.Add(1, new KeyValuePair<string, object?>("job", job));

    public static void JobRunUndone(string job) => JobRunsUndone.Add(1, new KeyValuePair<string, object?>("job", job));

    /// <summary>A job process this silo started finished: process start to exit.</summary>
    public static void JobRunFinished(string job, string status, TimeSpan duration) =>
        JobRunDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("job", job), new KeyValuePair<string, object?>("status", status));
}
