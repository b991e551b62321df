using DataBuild.Protos;

namespace DataBuild.Tests.EventLog;

/// <summary>Events of every type, with every field set, for round trips and filters.</summary>
public static class SampleEvents
{
    public static PartitionRef Ref(string s) => new() { Str = s };

    public static DataBuildEvent WantCreate(string wantId, params string[] refs)
    {
        var e = new WantCreateEventV1
        {
            WantId = wantId, DataTimestamp = 1_704_067_200_000, TtlSeconds = 30 * 86400, SlaSeconds = 33 * 3600,
            Source = new EventSource { Type = EventSourceType.Api, Name = "tests" }, Comment = "daily",
            ParentWantId = "parent-" + wantId, RootWantId = "root-" + wantId,
        };
        e.Partitions.AddRange(refs.Select(Ref));
        return new DataBuildEvent { WantCreate = e };
    }

    public static DataBuildEvent JobRunSucceeded(string runId, string label, params string[] refs)
    {
        var e = new JobRunSucceededEventV1 { JobRunId = runId, JobLabel = label, DurationMs = 1234 };
        e.Partitions.AddRange(refs.Select(Ref));
        return new DataBuildEvent { JobRunSucceeded = e };
    }

    /// <summary>One event of each type in the envelope's oneof.</summary>
    public static IReadOnlyList<DataBuildEvent> OneOfEach()
    {
        var parts = new[] { Ref("raw/reviews/date=2024-01-01"), Ref("clean/reviews/date=2024-01-01") };
        var queued = new JobRunQueuedEventV1 { JobRunId = "run-1", JobLabel = "clean", Attempt = 1 };
        queued.Partitions.AddRange(parts); queued.WantIds.Add("w-1");
        var started = new JobRunStartedEventV1 { JobRunId = "run-1", JobLabel = "clean", SiloId = "silo-a", Attempt = 1, Pid = 4242 };
        started.Partitions.AddRange(parts);
        var failed = new JobRunFailedEventV1 { JobRunId = "run-1", JobLabel = "clean", Reason = "exit 3", ExitCode = 3, WillRetry = true, DurationMs = 10 };
        failed.Partitions.AddRange(parts);
        var missing = new JobRunMissingDepsEventV1 { JobRunId = "run-2", JobLabel = "clean" };
        missing.Partitions.Add(parts[1]); missing.MissingDeps.Add(parts[0]);
        var cancelled = new JobRunCancelledEventV1 { JobRunId = "run-3", JobLabel = "clean", Reason = "no want left" };
        cancelled.Partitions.Add(parts[1]);
        var status = new PartitionStatusChangedEventV1
        {
            Partition = parts[1], PreviousStatus = PartitionStatus.Building, Status = PartitionStatus.UpstreamWaiting,
            JobRunId = "run-2", Reason = "missing deps",
        };
        status.WantIds.Add("w-1"); status.MissingDeps.Add(parts[0]);
        var wantFailed = new WantFailedEventV1 { WantId = "w-1", Reason = "clean failed 3 times" };
        wantFailed.FailedPartitions.Add(parts[1]);

        return
        [
            WantCreate("w-1", "clean/reviews/date=2024-01-01"),
            new() { WantCancel = new WantCancelEventV1 { WantId = "w-1", Source = new EventSource { Type = EventSourceType.Cli, Name = "ana" }, Comment = "wrong date" } },
            new() { WantSatisfied = new WantSatisfiedEventV1 { WantId = "w-1" } },
            new() { WantExpired = new WantExpiredEventV1 { WantId = "w-1", TtlDeadline = 1_706_659_200_000 } },
            new() { WantSlaViolated = new WantSlaViolatedEventV1 { WantId = "w-1", SlaDeadline = 1_704_186_000_000 } },
            new() { WantFailed = wantFailed },
            new() { PartitionStatusChanged = status },
            new() { JobRunQueued = queued },
            new() { JobRunStarted = started },
            new() { JobRunHeartbeat = new JobRunHeartbeatEventV1 { JobRunId = "run-1", JobLabel = "clean", SiloId = "silo-a" } },
            JobRunSucceeded("run-1", "clean", "clean/reviews/date=2024-01-01"),
            new() { JobRunFailed = failed },
            new() { JobRunMissingDeps = missing },
            new() { JobRunCancelled = cancelled },
        ];
    }
}
