using System.Globalization;
using System.Text.Json;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;

namespace DataBuild.Api.Wants;

/// <summary>
/// The body of <c>POST /api/v1/wants</c>, parsed by hand so that every mistake gets its own message:
/// <c>{partitions, data_timestamp?, ttl_seconds?, sla_seconds?, source?, comment?}</c>.
/// </summary>
public sealed record WantRequest(IReadOnlyList<string> Partitions, long DataTimestamp, long TtlSeconds, long? SlaSeconds, string SourceType, string SourceName, string? Comment)
{
    public const int MaxPartitions = 1000;
    public const long DefaultTtlSeconds = 30L * 86400;
    public const long MaxSeconds = 10L * 365 * 86400; // ten years: anything longer is a mistake
    public const int MaxCommentLength = 4000;
    private static readonly HashSet<string> Fields = ["partitions", "data_timestamp", "ttl_seconds", "sla_seconds", "source", "comment"];

    /// <summary>Parses and validates; throws <see cref="ProblemException"/> with a 422 naming the first problem.</summary>
    public static WantRequest Parse(JsonElement body, PartitionOwners owners, TimeProvider clock)
    {
        if (body.ValueKind != JsonValueKind.Object)
            throw Invalid("Invalid want", $"the request body must be a JSON object; got {Kind(body)}");
        foreach (var property in body.EnumerateObject())
        {
            if (!Fields.Contains(property.Name))
                throw Invalid("Unknown field", $"'{property.Name}' is not a field of a want; expected {string.Join(", ", Fields)}");
        }

        if (!body.TryGetProperty("partitions", out var parts) || parts.ValueKind != JsonValueKind.Array)
            throw Invalid("Invalid partitions", "'partitions' must be an array of partition refs");
        var count = parts.GetArrayLength();
        if (count == 0) throw Invalid("Invalid partitions", "a want must name at least one partition");
        if (count > MaxPartitions) throw Invalid("Invalid partitions", $"a want may name at most {MaxPartitions} partitions; got {count}");
        var partitions = new List<string>(count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (item, i) in parts.EnumerateArray().Select((p, i) => (p, i)))
        {
            if (item.ValueKind != JsonValueKind.String) throw Invalid("Invalid partition ref", $"partitions[{i}] must be a string; got {Kind(item)}");
            var partitionRef = item.GetString()!;
            if (PartitionRefs.Problem(partitionRef) is { } problem) throw Invalid("Invalid partition ref", $"partitions[{i}]: {problem}");
            if (!seen.Add(partitionRef)) throw Invalid("Invalid partitions", $"partitions[{i}]: '{partitionRef}' is listed twice");
            if (owners.Resolve(partitionRef).Problem is { } unowned) throw Invalid("Unknown partition", unowned);
            partitions.Add(partitionRef);
        }

        var dataTimestamp = body.TryGetProperty("data_timestamp", out var ts) && ts.ValueKind != JsonValueKind.Null
            ? ParseInstant(ts, "data_timestamp")
            : clock.GetUtcNow().ToUnixTimeMilliseconds();
        var ttl = Seconds(body, "ttl_seconds", allowZero: false) ?? DefaultTtlSeconds;
        var sla = Seconds(body, "sla_seconds", allowZero: true);
        if (sla > ttl)
            throw Invalid("Invalid sla_seconds", $"sla_seconds ({sla}) is after ttl_seconds ({ttl}): the want would expire before its SLA could be missed");

        var (sourceType, sourceName) = ParseSource(body);
        string? comment = null;
        if (body.TryGetProperty("comment", out var c) && c.ValueKind != JsonValueKind.Null)
        {
            if (c.ValueKind != JsonValueKind.String) throw Invalid("Invalid comment", $"'comment' must be a string; got {Kind(c)}");
            comment = c.GetString();
            if (comment!.Length > MaxCommentLength) throw Invalid("Invalid comment", $"'comment' is {comment.Length} characters; the limit is {MaxCommentLength}");
        }
        return new WantRequest(partitions, dataTimestamp, ttl, sla, sourceType, sourceName, comment);
    }

    /// <summary>A date (midnight UTC), an RFC 3339 instant, or unix seconds (number or string), as epoch ms.</summary>
    public static long ParseInstant(JsonElement value, string field)
    {
        if (value.ValueKind == JsonValueKind.Number)
        {
            if (value.TryGetInt64(out var seconds) && seconds >= 0 && seconds <= 253402300799) return seconds * 1000;
            throw Invalid($"Invalid {field}", $"{field} {value.GetRawText()} is not a whole number of unix seconds between 0 and 253402300799");
        }
        if (value.ValueKind == JsonValueKind.String && TryParseInstant(value.GetString()!, out var ms)) return ms;
        throw Invalid($"Invalid {field}", $"{field} {value.GetRawText()} is not a date (2024-01-01), an RFC 3339 instant (2024-01-01T09:00:00Z) or unix seconds");
    }

    public static bool TryParseInstant(string text, out long epochMs)
    {
        epochMs = 0;
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds <= 253402300799)
        {
            epochMs = seconds * 1000;
            return true;
        }
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            epochMs = new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).ToUnixTimeMilliseconds();
            return true;
        }
        // RFC 3339 requires a time zone: "Z" or an offset.
        if (text.Length > 10 && (text.EndsWith('Z') || text.EndsWith('z') || text[^6] is '+' or '-')
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var instant)
            && instant.Year >= 1970)
        {
            epochMs = instant.ToUnixTimeMilliseconds();
            return true;
        }
        return false;
    }

    private static long? Seconds(JsonElement body, string field, bool allowZero)
    {
        if (!body.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        var min = allowZero ? 0 : 1;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var seconds))
            throw Invalid($"Invalid {field}", $"{field} must be a whole number of seconds; got {value.GetRawText()}");
        if (seconds < min || seconds > MaxSeconds)
            throw Invalid($"Invalid {field}", $"{field} must be between {min} and {MaxSeconds} (ten years); got {seconds}");
        return seconds;
    }

    private static (string Type, string Name) ParseSource(JsonElement body)
    {
        if (!body.TryGetProperty("source", out var source) || source.ValueKind == JsonValueKind.Null) return ("api", "");
        string? type = null, name = "";
        if (source.ValueKind == JsonValueKind.String) type = source.GetString();
        else if (source.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in source.EnumerateObject())
            {
                if (p.Name == "type" && p.Value.ValueKind == JsonValueKind.String) type = p.Value.GetString();
                else if (p.Name == "name" && p.Value.ValueKind == JsonValueKind.String) name = p.Value.GetString();
                else throw Invalid("Invalid source", $"source.{p.Name} is not a string field of a source (type, name)");
            }
        }
        if (type is null || !SourceTypes.All.Contains(type))
            throw Invalid("Invalid source", $"source type must be one of {string.Join(", ", SourceTypes.All)}; got {source.GetRawText()}");
        return (type, name ?? "");
    }

    private static ProblemException Invalid(string title, string detail) => new(Problems.Unprocessable(title, detail));

    private static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();
}
