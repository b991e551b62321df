using DataBuild.Protos;

namespace DataBuild.Runtime.EventLog;

public enum EventKeyKind : short { Want = 1, Partition = 2, JobLabel = 3, JobRun = 4 }

/// <summary>What an event is about, stored beside it so every filter has an index behind it.</summary>
public static class EventKeys
{
    public static IEnumerable<(EventKeyKind Kind, string Key)> Of(DataBuildEvent e)
    {
        var keys = new HashSet<(EventKeyKind, string)>();
        void Want(string? id) { if (!string.IsNullOrEmpty(id)) keys.Add((EventKeyKind.Want, id)); }
        void Parts(IEnumerable<PartitionRef> refs) { foreach (var r in refs) if (r.Str.Length > 0) keys.Add((EventKeyKind.Partition, r.Str)); }
        void Job(string label, string runId)
        {
            if (label.Length > 0) keys.Add((EventKeyKind.JobLabel, label));
            if (runId.Length > 0) keys.Add((EventKeyKind.JobRun, runId));
        }

        switch (e.EventCase)
        {
            case DataBuildEvent.EventOneofCase.WantCreate:
                // Filed under its parent too: a want's timeline shows the child wants it led to, and a follower finds them.
                Want(e.WantCreate.WantId); Want(e.WantCreate.ParentWantId); Parts(e.WantCreate.Partitions);
                break;
            case DataBuildEvent.EventOneofCase.WantCancel: Want(e.WantCancel.WantId); break;
            case DataBuildEvent.EventOneofCase.WantSatisfied: Want(e.WantSatisfied.WantId); break;
            case DataBuildEvent.EventOneofCase.WantExpired: Want(e.WantExpired.WantId); break;
            case DataBuildEvent.EventOneofCase.WantSlaViolated: Want(e.WantSlaViolated.WantId); break;
            case DataBuildEvent.EventOneofCase.WantFailed:
                Want(e.WantFailed.WantId); Parts(e.WantFailed.FailedPartitions);
                break;
            case DataBuildEvent.EventOneofCase.PartitionStatusChanged:
                var p = e.PartitionStatusChanged;
                Parts([p.Partition]);
                foreach (var w in p.WantIds) Want(w);
                if (p.HasJobRunId) keys.Add((EventKeyKind.JobRun, p.JobRunId));
                break;
            case DataBuildEvent.EventOneofCase.JobRunQueued:
                Job(e.JobRunQueued.JobLabel, e.JobRunQueued.JobRunId); Parts(e.JobRunQueued.Partitions);
                foreach (var w in e.JobRunQueued.WantIds) Want(w);
                break;
            case DataBuildEvent.EventOneofCase.JobRunStarted:
                Job(e.JobRunStarted.JobLabel, e.JobRunStarted.JobRunId); Parts(e.JobRunStarted.Partitions);
                break;
            case DataBuildEvent.EventOneofCase.JobRunHeartbeat:
                Job(e.JobRunHeartbeat.JobLabel, e.JobRunHeartbeat.JobRunId);
                break;
            case DataBuildEvent.EventOneofCase.JobRunSucceeded:
                Job(e.JobRunSucceeded.JobLabel, e.JobRunSucceeded.JobRunId); Parts(e.JobRunSucceeded.Partitions);
                break;
            case DataBuildEvent.EventOneofCase.JobRunFailed:
                Job(e.JobRunFailed.JobLabel, e.JobRunFailed.JobRunId); Parts(e.JobRunFailed.Partitions);
                break;
            case DataBuildEvent.EventOneofCase.JobRunMissingDeps:
                Job(e.JobRunMissingDeps.JobLabel, e.JobRunMissingDeps.JobRunId); Parts(e.JobRunMissingDeps.Partitions);
                break;
            case DataBuildEvent.EventOneofCase.JobRunCancelled:
                Job(e.JobRunCancelled.JobLabel, e.JobRunCancelled.JobRunId); Parts(e.JobRunCancelled.Partitions);
                break;
        }
        return keys;
    }
}
