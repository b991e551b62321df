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
    public const string TtlDeadline = "ttl";
    public const string SlaDeadline = "sla";
}
