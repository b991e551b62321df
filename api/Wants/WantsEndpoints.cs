using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using DataBuild.Api.Partitions;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Protos;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace DataBuild.Api.Wants;

/// <summary><c>/api/v1/wants</c>: create (idempotently), list, detail, cancel.</summary>
public static class WantsEndpoints
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;
    private const int MaxIdempotencyKeyLength = 255;

    public static RouteGroupBuilder MapWants(this RouteGroupBuilder api)
    {
        var wants = api.MapGroup("/wants").WithTags("Wants");
        wants.MapPost("", CreateAsync).WithName("CreateWant").WithSummary("Declare a want; honours Idempotency-Key.");
        wants.MapGet("", ListAsync).WithName("ListWants").WithSummary("Wants by status, partition and source, paged by 'after'.");
        wants.MapGet("/{wantId}", GetAsync).WithName("GetWant").WithSummary("A want, its partitions' states, child wants and timeline.");
        wants.MapDelete("/{wantId}", CancelAsync).WithName("CancelWant").WithSummary("Cancel a want that has not ended.");
        return api;
    }

    private static async Task<IResult> CreateAsync(HttpContext http, IWantIntake intake, PartitionOwners owners, WantQueries queries,
        TimeProvider clock, CancellationToken cancellationToken)
    {
        try
        {
            var key = IdempotencyKey(http.Request);
            var (body, raw) = await RequestBody.ReadJsonAsync(http.Request, cancellationToken);
            // The body's hash tells a replay from a reuse of the key with another body; without a key nothing reads it.
            var hash = key is null ? null : Convert.ToHexString(SHA256.HashData(raw));
            if (key is not null && await ReplayAsync(http, queries, key, hash!, cancellationToken) is { } replay) return replay;

            var request = WantRequest.Parse(body, owners, clock);
            var wantId = Guid.NewGuid().ToString();
            WantView view;
            try
            {
                view = await intake.CreateAsync(new CreateWant(wantId, request.Partitions, request.DataTimestamp,
                    request.TtlSeconds, request.SlaSeconds, request.SourceType, request.SourceName, request.Comment, null, null, key, hash));
            }
            catch (IdempotencyKeyTakenException) when (key is not null)
            {
                // A concurrent request with the same key committed first: answer as it was answered.
                return await ReplayAsync(http, queries, key, hash!, cancellationToken)
                    ?? throw new InvalidOperationException($"Idempotency-Key '{key}' was taken but cannot be read back.");
            }
            return Results.Json(ApiJson.From(view), ApiJson.Options, statusCode: StatusCodes.Status201Created)
                .WithLocation(http, $"/api/v1/wants/{view.WantId}");
        }
        catch (ProblemException e)
        {
            return e.Problem;
        }
    }

    private static async Task<IResult?> ReplayAsync(HttpContext http, WantQueries queries, string key, string hash, CancellationToken cancellationToken)
    {
        if (await queries.IdempotencyKeyAsync(key, cancellationToken) is not { } existing) return null;
        if (existing.RequestHash != hash)
            return Problems.Unprocessable("Idempotency-Key reused", $"Idempotency-Key '{key}' was first used with a different request body (want {existing.WantId}); use a new key for a new request");
        var want = await queries.GetAsync(existing.WantId, cancellationToken)
            ?? throw new InvalidOperationException($"Want {existing.WantId} of Idempotency-Key '{key}' is missing.");
        http.Response.Headers["Idempotent-Replayed"] = "true";
        return Results.Json(ApiJson.From(want), ApiJson.Options, statusCode: StatusCodes.Status201Created).WithLocation(http, $"/api/v1/wants/{want.WantId}");
    }

    private static string? IdempotencyKey(HttpRequest request)
    {
        if (!request.Headers.TryGetValue("Idempotency-Key", out var values)) return null;
        var key = values.Count == 1 ? values[0] : null;
        if (string.IsNullOrWhiteSpace(key) || key.Length > MaxIdempotencyKeyLength || key.Any(char.IsControl))
            throw new ProblemException(Problems.BadRequest("Invalid Idempotency-Key", $"Idempotency-Key must be one value of 1 to {MaxIdempotencyKeyLength} printable characters"));
        return key;
    }

    private static async Task<IResult> ListAsync(HttpRequest request, WantQueries queries, CancellationToken cancellationToken)
    {
        var q = request.Query;
        var status = Single(q["status"]);
        if (status is not null && !WantStatus.All.Contains(status))
            return Problems.BadRequest("Invalid status", $"status must be one of {string.Join(", ", WantStatus.All)}; got '{status}'");
        var source = Single(q["source"]);
        if (source is not null && !SourceTypes.All.Contains(source))
            return Problems.BadRequest("Invalid source", $"source must be one of {string.Join(", ", SourceTypes.All)}; got '{source}'");
        if (!TryInt(q["limit"], DefaultLimit, 1, MaxLimit, out var limit))
            return Problems.BadRequest("Invalid limit", $"limit must be a whole number between 1 and {MaxLimit}; got '{q["limit"]}'");
        if (!TryInt(q["after"], 0, 0, long.MaxValue, out var after))
            return Problems.BadRequest("Invalid after", $"after must be the next_after of a previous page; got '{q["after"]}'");
        var (wants, next) = await queries.ListAsync(new WantQueries.Filter(status, Single(q["partition"]), source, (int)limit, after), cancellationToken);
        return Results.Json(new { wants = wants.Select(ApiJson.From), next_after = next?.ToString() }, ApiJson.Options);
    }

    private static async Task<IResult> GetAsync(string wantId, WantQueries queries, PartitionQueries partitions, IDataStore store, CancellationToken cancellationToken)
    {
        if (await queries.GetAsync(wantId, cancellationToken) is not { } want) return UnknownWant(wantId);
        var node = JsonSerializer.SerializeToNode(ApiJson.From(want), ApiJson.Options)!.AsObject();
        node["partition_states"] = JsonSerializer.SerializeToNode(
            (await partitions.ManyAsync(want.Partitions, cancellationToken)).Select(p => PartitionsEndpoints.Json(p, null)), ApiJson.Options);
        node["child_wants"] = JsonSerializer.SerializeToNode((await queries.ChildrenAsync(wantId, cancellationToken)).Select(ApiJson.From), ApiJson.Options);
        var timeline = await store.Events.ListAsync(new EventFilter { WantIds = { wantId }, Limit = 1000 }, cancellationToken);
        node["timeline"] = JsonNode.Parse(EventJson.Page(timeline))!["events"]!.DeepClone();
        return Results.Json(node, ApiJson.Options);
    }

    private static async Task<IResult> CancelAsync(string wantId, HttpRequest request, IGrainFactory grains, WantQueries queries, CancellationToken cancellationToken)
    {
        if (await queries.GetAsync(wantId, cancellationToken) is null) return UnknownWant(wantId);
        try
        {
            var view = await grains.GetGrain<IWantGrain>(wantId).Cancel(new CancelWant("api", "", Single(request.Query["comment"])));
            return Results.Json(ApiJson.From(view), ApiJson.Options);
        }
        catch (WantConflictException e)
        {
            return Problems.Conflict("Want already ended", e.Message);
        }
    }

    private static IResult UnknownWant(string wantId) => Problems.NotFound("Unknown want", $"no want has id '{wantId}'");

    internal static string? Single(Microsoft.Extensions.Primitives.StringValues values) => values.Count == 0 || string.IsNullOrEmpty(values[0]) ? null : values[0];

    internal static bool TryInt(Microsoft.Extensions.Primitives.StringValues values, long fallback, long min, long max, out long value)
    {
        value = fallback;
        if (Single(values) is not { } text) return true;
        return values.Count == 1 && long.TryParse(text, System.Globalization.NumberStyles.None, null, out value) && value >= min && value <= max;
    }

    private static IResult WithLocation(this IResult result, HttpContext http, string location)
    {
        http.Response.Headers.Location = location;
        return result;
    }
}
