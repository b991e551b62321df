using DataBuild.Runtime.Hosting;

namespace DataBuild.Grains.Jobs;

/// <summary>The partition a job run built, as the job dispatcher sees it.</summary>
public interface IJobRunTarget : IGrainWithStringKey
{
    /// <summary>
    /// Records the run's outcome (fenced by the claim's version: <see cref="StaleJobRunClaimException"/> if the run was
    /// claimed again) in the same turn, and so the same commit, as the partition's reaction to it.
    /// </summary>
    Task RecordRunOutcome(JobRunRow run, JobOutcome outcome, long finishedAt);
}
