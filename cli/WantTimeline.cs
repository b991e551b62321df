using System.Runtime.CompilerServices;
using System.Text.Json;
using static DataBuild.Cli.Output;

namespace DataBuild.Cli;

/// <summary>
/// A want's events, and those of the child wants it leads to, in log order from its creation to its end: read from
/// the build event log, so that no transition is missed however quickly it passed (sampling the want's page would).
/// <para>
/// A child want's creation is filed under its parent's id too (see EventKeys), so a followed want's children are
/// found as they are created; each is followed from its creation on, until it ends.
/// </para>
/// </summary>
public sealed class WantTimeline(ApiClient api, string wantId)
{
    // A request line holds about a hundred ids; beyond that the log is read unfiltered and filtered here.
    private const int MaxIdsInRequest = 100;
    private const int WaitSeconds = 30;

    /// <summary>The events that end a want, and the status each leaves it in.</summary>
    public static readonly IReadOnlyDictionary<string, string> Ends = new Dictionary<string, string>
    {
        ["want_satisfied"] = "satisfied", ["want_failed"] = "failed", ["want_expired"] = "expired", ["want_cancel"] = "cancelled",
    };

    private readonly HashSet<string> _followed = [wantId];

    /// <summary>Yields each event about the want or its followed children, ending with the want's own end.</summary>
    public async IAsyncEnumerable<JsonElement> FollowAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        var after = "0";
        while (true)
        {
            var ids = _followed.Count <= MaxIdsInRequest ? $"&want_id={Uri.EscapeDataString(string.Join(",", _followed.Order(StringComparer.Ordinal)))}" : "";
            var page = await api.GetAsync($"api/v1/events?after={after}&limit=1000&wait_seconds={WaitSeconds}{ids}", ct);
            var widened = false;
            foreach (var e in page.GetProperty("events").EnumerateArray())
            {
                if (!WantsOf(e).Any(_followed.Contains)) continue;
                after = S(e, "index");
                yield return e;
                var type = S(e, "type");
                var id = S(e.GetProperty(type), "want_id");
                if (Ends.ContainsKey(type))
                {
                    if (id == wantId) yield break;
                    _followed.Remove(id); // an ended want has nothing more to say
                }
                else if (type == "want_create" && _followed.Add(id))
                {
                    // The rest of this page was read without the new child: read on from its creation with it.
                    widened = true;
                    break;
                }
            }
            if (!widened) after = S(page, "next_idx");
        }
    }

    /// <summary>The wants an event is about, as the log files it (EventKeys on the server).</summary>
    public static IEnumerable<string> WantsOf(JsonElement e)
    {
        var type = S(e, "type");
        var body = e.GetProperty(type);
        switch (type)
        {
            case "want_create":
                yield return S(body, "want_id");
                if (S(body, "parent_want_id") is { Length: > 0 } parent) yield return parent;
                break;
            case "partition_status_changed" or "job_run_queued":
                if (body.TryGetProperty("want_ids", out var ids))
                    foreach (var w in ids.EnumerateArray()) yield return w.GetString()!;
                break;
            default:
                if (type.StartsWith("want_", StringComparison.Ordinal)) yield return S(body, "want_id");
                break;
        }
    }
}
