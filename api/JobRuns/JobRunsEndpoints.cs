using DataBuild.Api.Wants;
using DataBuild.GrainInterfaces;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace DataBuild.Api.JobRuns;

/// <summary><c>/api/v1/job-runs</c>: runs, their outcomes and their kept stdout/stderr.</summary>
public static class JobRunsEndpoints
{
    public static RouteGroupBuilder MapJobRuns(this RouteGroupBuilder api)
    {
        var runs = api.MapGroup("/job-runs").WithTags("Job runs");
        runs.MapGet("", ListAsync).WithName("ListJobRuns").WithSummary("Job runs by status, job label and partition, paged by 'after'.");
        runs.MapGet("/{jobRunId}", GetAsync).WithName("GetJobRun").WithSummary("One job run.");
        runs.MapGet("/{jobRunId}/logs", LogsAsync).WithName("GetJobRunLogs").WithSummary("A job run's stdout and stderr.");
        return api;
    }

    private static async Task<IResult> ListAsync(HttpRequest request, JobRunQueries queries, CancellationToken ct)
    {
        var q = request.Query;
        var status = WantsEndpoints.Single(q["status"]);
        if (status is not null && !JobRunStatus.All.Contains(status))
            return Problems.BadRequest("Invalid status", $"status must be one of {string.Join(", ", JobRunStatus.All)}; got '{status}'");
        if (!WantsEndpoints.TryInt(q["limit"], WantsEndpoints.DefaultLimit, 1, WantsEndpoints.MaxLimit, out var limit))
            return Problems.BadRequest("Invalid limit", $"limit must be a whole number between 1 and {WantsEndpoints.MaxLimit}; got '{q["limit"]}'");
        if (!WantsEndpoints.TryInt(q["after"], 0, 0, long.MaxValue, out var after))
            return Problems.BadRequest("Invalid after", $"after must be the next_after of a previous page; got '{q["after"]}'");
        var (runs, next) = await queries.ListAsync(status, WantsEndpoints.Single(q["job_label"]), WantsEndpoints.Single(q["partition"]), (int)limit, after, ct);
        return Results.Json(new { job_runs = runs, next_after = next?.ToString() }, ApiJson.Options);
    }

    private static async Task<IResult> GetAsync(string jobRunId, JobRunQueries queries, CancellationToken ct) =>
        await queries.GetAsync(jobRunId, ct) is { } run
            ? Results.Json(run, ApiJson.Options)
            : Problems.NotFound("Unknown job run", $"no job run has id '{jobRunId}'");

    private static async Task<IResult> LogsAsync(string jobRunId, JobRunQueries queries, CancellationToken ct) =>
        await queries.LogsAsync(jobRunId, ct) is { } logs
            ? Results.Json(new { job_run_id = jobRunId, status = logs.Status, stdout = logs.Stdout, stderr = logs.Stderr }, ApiJson.Options)
            : Problems.NotFound("Unknown job run", $"no job run has id '{jobRunId}'");
}
