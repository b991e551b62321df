namespace DataBuild.GrainInterfaces;

/// <summary>Want statuses as the API shows them. The last four are terminal.</summary>
public static class WantStatus
{
    public const string Idle = "idle";
    public const string Building = "building";
    public const string UpstreamBuilding = "upstream_building";
    public const string Satisfied = "satisfied";
    public const string Failed = "failed";
    public const string Expired = "expired";
    public const string Cancelled = "cancelled";

    public static readonly IReadOnlyList<string> All = [Idle, Building, UpstreamBuilding, Satisfied, Failed, Expired, Cancelled];

    public static bool IsTerminal(string status) => status is Satisfied or Failed or Expired or Cancelled;
}

public static class PartitionStatusNames
{
    public const string Missing = "missing";
    public const string Building = "building";
    public const string UpstreamWaiting = "upstream_waiting";
    public const string Available = "available";
    public const string Failed = "failed";

    public static readonly IReadOnlyList<string> All = [Missing, Building, UpstreamWaiting, Available, Failed];
}

/// <summary>Who asked for a want.</summary>
public static class SourceTypes
{
    public static readonly IReadOnlyList<string> All = ["api", "cli", "dashboard", "scheduled", "job", "graph"];
}

/// <summary>Job-run statuses as the API shows them.</summary>
public static class JobRunStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string MissingDeps = "missing_deps";
    public const string Cancelled = "cancelled";
    public static readonly IReadOnlyList<string> All = [Queued, Running, Succeeded, Failed, MissingDeps, Cancelled];
}
