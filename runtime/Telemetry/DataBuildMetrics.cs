using System.Diagnostics.Metrics;

namespace DataBuild.Runtime.Telemetry;

/// <summary>
/// DataBuild's own instruments (meter "DataBuild"), served with the runtime's and ASP.NET Core's at <c>GET /metrics</c>.
/// One meter per process: silos started in one test process share it.
/// </summary>
public static class DataBuildMetrics
{
    public const string MeterName = "DataBuild";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Grain turns by grain type and outcome (committed, failed, refused: a hand-off refused at the commit and run again).</summary>
    public static readonly Counter<long> GrainTurns = Meter.CreateCounter<long>("databuild.grain.turns", description: "Grain turns by grain type and outcome");

    /// <summary>Transactions of a PostgreSQL group commit and how many turns shared each.</summary>
    public static readonly Histogram<long> CommitGroupTurns = Meter.CreateHistogram<long>("databuild.store.commit_group.turns",
        description: "Turns committed together in one PostgreSQL transaction");

    /// <summary>How long a group commit's round trip took, WAL flush included.</summary>
    public static readonly Histogram<double> CommitGroupDuration = Meter.CreateHistogram<double>("databuild.store.commit_group.duration", unit: "s",
        description: "Round trip of one PostgreSQL group commit");

    /// <summary>Reminders and grain messages delivered, by outcome (delivered, stale, failed).</summary>
    public static readonly Counter<long> ReminderDeliveries = Meter.CreateCounter<long>("databuild.reminder.deliveries",
        description: "Reminder and message deliveries by outcome");

    /// <summary>Followers of the event log (GET /api/v1/events?wait_seconds=) waiting for an event now.</summary>
    public static readonly UpDownCounter<long> EventLongPollsWaiting = Meter.CreateUpDownCounter<long>("databuild.events.long_polls.waiting",
        description: "Event-log long polls waiting for an event");

    /// <summary>Job processes started on this silo, by job.</summary>
    public static readonly Counter<long> JobRunsStarted = Meter.CreateCounter<long>("databuild.job_run.started", description: "Job runs started on this silo");

    /// <summary>Job runs finished on this silo, by job and status; their duration, process start to exit.</summary>
    public static readonly Histogram<double> JobRunDuration = Meter.CreateHistogram<double>("databuild.job_run.duration", unit: "s",
        description: "Job runs finished on this silo: process start to exit, by job and status");
}
