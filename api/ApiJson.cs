using System.Globalization;
using System.Text.Json;
using DataBuild.GrainInterfaces;

namespace DataBuild.Api;

/// <summary>The API's JSON: snake_case names, RFC 3339 UTC instants.</summary>
public static class ApiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static string? Instant(long? epochMs) =>
        epochMs is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) : null;

    public sealed record Source(string Type, string Name);

    public sealed record Want(
        string WantId, IReadOnlyList<string> Partitions, string DataTimestamp, long TtlSeconds, long? SlaSeconds,
        string TtlDeadline, string? SlaDeadline, Source Source, string? Comment, string? ParentWantId, string RootWantId,
        string Status, bool SlaViolated, string? SlaViolatedAt, string CreatedAt, string? SatisfiedAt, string? FinishedAt, string? Reason);

    public static Want From(WantView w) => new(
        w.WantId, w.Partitions, Instant(w.DataTimestamp)!, w.TtlSeconds, w.SlaSeconds, Instant(w.TtlDeadline)!, Instant(w.SlaDeadline),
        new Source(w.SourceType, w.SourceName), w.Comment, w.ParentWantId, w.RootWantId, w.Status, w.SlaViolated, Instant(w.SlaViolatedAt),
        Instant(w.CreatedAt)!, Instant(w.SatisfiedAt), Instant(w.FinishedAt), w.Reason);

    public sealed record Owner(string Kind, string Name);

    public sealed record Partition(string Ref, string Status, Owner? Owner, string? UpdatedAt, string? AvailableAt, string? JobRunId, string? Reason, int WaitingWants);
}
