using System.Globalization;

namespace DataBuild.Grains;

/// <summary>
/// Names of the durable messages grains send each other as reminders committed with the sending turn:
/// delivered at least once after that commit, even if the sending silo dies.
/// </summary>
internal static class GrainMessages
{
    /// <summary>To a partition: this want now waits on you (<see cref="WantWaitingName"/>).</summary>
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

    /// <summary>
    /// "want:&lt;id&gt;|&lt;data timestamp&gt;|&lt;ttl s&gt;|&lt;sla s or empty&gt;|&lt;root want id&gt;": the message carries the want's terms,
    /// which never change, so that the partition need not call the want for them (a turn run ahead of its message's
    /// commit may not call the want, whose turn is the one committing). The want computes the same name to withdraw it.
    /// </summary>
    public static string WantWaitingName(string wantId, Waiter terms) => string.Join('|', WantWaiting + wantId,
        terms.DataTimestamp.ToString(CultureInfo.InvariantCulture), terms.TtlSeconds.ToString(CultureInfo.InvariantCulture),
        terms.SlaSeconds?.ToString(CultureInfo.InvariantCulture) ?? "", terms.RootWantId);

    /// <summary>The want id of a <see cref="WantWaiting"/> message, and its terms when it carries them (not one written before they were).</summary>
    public static (string WantId, Waiter? Terms) ParseWantWaiting(string name)
    {
        var parts = name[WantWaiting.Length..].Split('|');
        if (parts.Length != 5
            || !long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var dataTimestamp)
            || !long.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var ttl))
            return (parts[0], null);
        long? sla = long.TryParse(parts[3], NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : null;
        return (parts[0], new Waiter(dataTimestamp, ttl, sla, parts[4]));
    }
}
