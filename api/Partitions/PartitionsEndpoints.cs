using DataBuild.Api.Wants;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Runtime.EventLog;
using DataBuild.Runtime.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace DataBuild.Api.Partitions;

/// <summary><c>/api/v1/partitions</c>. A ref in a path is one percent-encoded segment (<c>/</c> as <c>%2F</c>).</summary>
public static class PartitionsEndpoints
{
    public static RouteGroupBuilder MapPartitions(this RouteGroupBuilder api)
    {
        var partitions = api.MapGroup("/partitions").WithTags("Partitions");
        partitions.MapGet("", ListAsync).WithName("ListPartitions").WithSummary("Partitions by status and full-match pattern, paged by ref.");
        partitions.MapGet("/{ref}", GetAsync).WithName("GetPartition").WithSummary("One partition's state and owner.");
        partitions.MapPost("/{ref}/available", MarkAvailableAsync).WithName("MarkPartitionAvailable")
            .WithSummary("An external partition is available: every want waiting on it is told at once.");
        return api;
    }

    public static ApiJson.Partition Json(PartitionView p, PartitionOwner? owner) => new(p.Ref, p.Status,
        owner is null ? null : new ApiJson.Owner(owner.KindName, owner.Name), p.UpdatedAt == 0 ? null : ApiJson.Instant(p.UpdatedAt),
        ApiJson.Instant(p.AvailableAt), p.JobRunId, p.Reason, p.WaitingWants);

    private static async Task<IResult> ListAsync(HttpRequest request, PartitionQueries queries, PartitionOwners owners, CancellationToken cancellationToken)
    {
        var q = request.Query;
        var status = WantsEndpoints.Single(q["status"]);
        if (status is not null && !PartitionStatusNames.All.Contains(status))
            return Problems.BadRequest("Invalid status", $"status must be one of {string.Join(", ", PartitionStatusNames.All)}; got '{status}'");
        PartitionPattern? pattern = null;
        if (WantsEndpoints.Single(q["pattern"]) is { } text)
        {
            try { pattern = new PartitionPattern(text); }
            catch (ArgumentException e) { return Problems.BadRequest("Invalid pattern", e.Message); }
        }
        if (!WantsEndpoints.TryInt(q["limit"], WantsEndpoints.DefaultLimit, 1, WantsEndpoints.MaxLimit, out var limit))
            return Problems.BadRequest("Invalid limit", $"limit must be a whole number between 1 and {WantsEndpoints.MaxLimit}; got '{q["limit"]}'");
        var (partitions, next) = await queries.ListAsync(status, pattern, (int)limit, WantsEndpoints.Single(q["after"]) ?? "", cancellationToken);
        return Results.Json(new { partitions = partitions.Select(p => Json(p, owners.Resolve(p.Ref).Owner)), next_after = next }, ApiJson.Options);
    }

    private static async Task<IResult> GetAsync(HttpContext http, PartitionQueries queries, PartitionOwners owners, CancellationToken cancellationToken)
    {
        if (RefFromPath(http) is not { } partitionRef) return BadRef(http);
        if (PartitionRefs.Problem(partitionRef) is { } problem) return Problems.Unprocessable("Invalid partition ref", problem);
        var (owner, unowned) = owners.Resolve(partitionRef);
        var view = await queries.GetAsync(partitionRef, cancellationToken);
        if (view is null && owner is null) return Problems.NotFound("Unknown partition", unowned!);
        return Results.Json(Json(view ?? PartitionQueries.Missing(partitionRef), owner), ApiJson.Options);
    }

    private static async Task<IResult> MarkAvailableAsync(HttpContext http, IGrainFactory grains, PartitionOwners owners)
    {
        if (RefFromPath(http) is not { } partitionRef) return BadRef(http);
        if (PartitionRefs.Problem(partitionRef) is { } problem) return Problems.Unprocessable("Invalid partition ref", problem);
        var (owner, unowned) = owners.Resolve(partitionRef);
        if (owner is null) return Problems.Unprocessable("Unknown partition", unowned!);
        if (owner.Kind != OwnerKind.External)
            return Problems.Unprocessable("Not an external partition",
                $"partition '{partitionRef}' is produced by {owner.KindName} '{owner.Name}'; only partitions matching external_patterns can be marked available");
        var view = await grains.GetGrain<IPartitionGrain>(partitionRef).MarkAvailable("api", "");
        return Results.Json(Json(view, owner), ApiJson.Options);
    }

    /// <summary>
    /// The ref segment, percent-decoded exactly once from the raw request target: the server leaves <c>%2F</c>
    /// encoded in the route value, so decoding that value again would mangle a literal <c>%25</c>.
    /// </summary>
    private static string? RefFromPath(HttpContext http)
    {
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? http.Request.Path.Value ?? "";
        var path = raw.Split('?', 2)[0];
        const string prefix = "/api/v1/partitions/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var segment = path[prefix.Length..];
        if (segment.EndsWith("/available", StringComparison.Ordinal)) segment = segment[..^"/available".Length];
        if (segment.Contains('/')) return null;
        try { return Uri.UnescapeDataString(segment); }
        catch (UriFormatException) { return null; }
    }

    private static IResult BadRef(HttpContext http) =>
        Problems.BadRequest("Invalid partition path", $"'{http.Request.Path}': a partition ref in a path must be one percent-encoded segment ('/' as %2F)");
}
