using System.Globalization;
using System.Text.Json;
using static DataBuild.Cli.Output;

namespace DataBuild.Cli;

/// <summary>
/// One line per event of a want's timeline (<see cref="WantTimeline"/>), stamped with the time since the want was
/// created: what `databuild build` prints when its output is not a terminal.
/// </summary>
public sealed class BuildProgress(string wantId)
{
    private readonly Dictionary<string, string> _childRefs = [];
    private DateTimeOffset? _created;

    /// <summary>From the want's creation to the last event seen, by the server's clock.</summary>
    public TimeSpan Elapsed { get; private set; }

    public string? Line(JsonElement e)
    {
        var type = S(e, "type");
        var body = e.GetProperty(type);
        var at = DateTimeOffset.Parse(S(e, "timestamp"), CultureInfo.InvariantCulture);
        _created ??= at;
        Elapsed = at - _created.Value;
        var text = type switch
        {
            "want_create" when S(body, "want_id") == wantId => null, // announced when the want was created
            "want_create" => Child(body, "created", _childRefs[S(body, "want_id")] = RefsOf(body, "partitions")),
            "partition_status_changed" => Partition(body),
            "want_sla_violated" => Want(body, "missed its SLA"),
            _ when WantTimeline.Ends.TryGetValue(type, out var ended) => Want(body, ended + (S(body, "reason") is { Length: > 0 } r ? $": {r}" : "")),
            _ => null, // job runs show through the partitions they move
        };
        return text is null ? null : $"[{Elapsed.TotalSeconds,6:0.0}s] {text}";
    }

    private string Want(JsonElement body, string what)
    {
        var id = S(body, "want_id");
        return id == wantId ? $"want {what}" : Child(body, what, _childRefs.GetValueOrDefault(id, ""));
    }

    private static string Child(JsonElement body, string what, string refs) => $" child want {Short(S(body, "want_id"))} {refs}: {what}";

    private static string Partition(JsonElement body)
    {
        var status = S(body, "status").Replace("PARTITION_STATUS_", "", StringComparison.Ordinal).ToLowerInvariant();
        // The server's reason says why (and names the run); without one, the run and what it misses.
        var detail = new List<string>();
        if (S(body, "reason") is { Length: > 0 } reason) detail.Add(reason);
        else
        {
            if (RefsOf(body, "missing_deps") is { Length: > 0 } missing) detail.Add($"missing {missing}");
            if (S(body, "job_run_id") is { Length: > 0 } run) detail.Add($"run {Short(run)}");
        }
        return $" {S(body.GetProperty("partition"), "str")}: {status}{(detail.Count > 0 ? $" ({string.Join("; ", detail)})" : "")}";
    }

    private static string RefsOf(JsonElement body, string name) =>
        body.TryGetProperty(name, out var refs) ? string.Join(" ", refs.EnumerateArray().Select(r => S(r, "str"))) : "";
}
