namespace DataBuild.Grains;

/// <summary>
/// Names of the durable messages grains send each other as reminders committed with the sending turn:
/// delivered at least once after that commit, even if the sending silo dies.
/// </summary>
internal static class GrainMessages
{
    /// <summary>To a partition: this want now waits on you.</summary>
    public const string WantWaiting = "want:";
    /// <summary>To a partition: this want no longer waits (it ended).</summary>
    public const string WantGone = "gone:";
    /// <summary>To a want: this partition of yours is available.</summary>
    public const string PartitionAvailable = "available:";
    /// <summary>To a want: this partition of yours is being built / waits on upstream partitions / failed.</summary>
    public const string PartitionBuilding = "building:";
    public const string PartitionUpstream = "upstream:";
    public const string PartitionFailed = "failed:";
    /// <summary>To a partition: a job run of yours finished (its outcome is in job_runs).</summary>
    public const string RunDone = "run-done:";
    /// <summary>To a partition: retry your build now (set by itself, with backoff).</summary>
    public const string Retry = "retry";
    /// <summary>To a partition: this downstream partition needs you; tell it when you are available.</summary>
    public const string Dependent = "dependent:";
    /// <summary>To a partition: one of your missing dependencies is available.</summary>
    public const string UpstreamAvailable = "upstream-available:";
    /// <summary>To a partition: one of your missing dependencies failed for good.</summary>
    public const string UpstreamFailed = "upstream-failed:";
    public const string TtlDeadline = "ttl";
    public const string SlaDeadline = "sla";
}
