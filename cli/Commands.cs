using System.Diagnostics;
using System.Text.Json;
using static DataBuild.Cli.Output;

namespace DataBuild.Cli;

/// <summary>The databuild commands of DESIGN, each a thin call to the HTTP API.</summary>
public sealed class Commands(ApiClient api)
{
    private static readonly HashSet<string> Flags = ["json", "follow", "help"];

    public static Arguments Parse(IEnumerable<string> args) => new(args, Flags);

    public async Task<int> WantCreateAsync(Arguments a)
    {
        var want = await api.PostAsync("api/v1/wants", WantBody(a, "cli"));
        if (a.Flag("json")) Json(want);
        else Console.WriteLine($"created want {S(want, "want_id")} ({S(want, "status")}) for {Refs(want, "partitions")}");
        return ExitCodes.Ok;
    }

    public async Task<int> WantListAsync(Arguments a)
    {
        var query = Query(("status", a.Option("status")), ("partition", a.Option("partition")), ("limit", "1000"));
        var json = a.Flag("json");
        a.RejectUnknown();
        var page = await api.GetAsync($"api/v1/wants{query}");
        if (json) { Json(page); return ExitCodes.Ok; }
        Table(["WANT", "STATUS", "SLA", "SOURCE", "CREATED", "PARTITIONS"], page.GetProperty("wants").EnumerateArray().Select(w => (IReadOnlyList<string>)
            [S(w, "want_id"), S(w, "status"), w.GetProperty("sla_violated").GetBoolean() ? "missed" : S(w, "sla_deadline") == "" ? "-" : "ok", S(w.GetProperty("source"), "type"), S(w, "created_at"), Refs(w, "partitions")]));
        return ExitCodes.Ok;
    }

    public async Task<int> WantStatusAsync(Arguments a)
    {
        var target = Single(a, "want status <ref|want_id>");
        var json = a.Flag("json");
        a.RejectUnknown();
        if (Guid.TryParse(target, out _))
        {
            var want = await api.GetAsync($"api/v1/wants/{target}");
            if (json) { Json(want); return ExitCodes.Ok; }
            PrintWant(want);
            return ExitCodes.Ok;
        }
        var partition = await api.GetAsync($"api/v1/partitions/{Uri.EscapeDataString(target)}");
        var wants = await api.GetAsync($"api/v1/wants{Query(("partition", target), ("limit", "1000"))}");
        if (json) { Json(JsonSerializer.SerializeToElement(new { partition, wants = wants.GetProperty("wants") })); return ExitCodes.Ok; }
        Console.WriteLine($"partition {target}: {S(partition, "status")}{(S(partition, "reason") is { Length: > 0 } r ? $" ({r})" : "")}");
        Table(["WANT", "STATUS", "CREATED"], wants.GetProperty("wants").EnumerateArray().Select(w => (IReadOnlyList<string>)[S(w, "want_id"), S(w, "status"), S(w, "created_at")]));
        return ExitCodes.Ok;
    }

    public async Task<int> WantCancelAsync(Arguments a)
    {
        var id = Single(a, "want cancel <want_id>");
        var json = a.Flag("json");
        a.RejectUnknown();
        var want = await api.DeleteAsync($"api/v1/wants/{Uri.EscapeDataString(id)}");
        if (json) Json(want); else Console.WriteLine($"want {S(want, "want_id")} is {S(want, "status")}");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Creates a want and follows it until it ends: live on a terminal (its page, redrawn); otherwise one line per
    /// event of its timeline, so a log or a script sees every transition however quickly it passed.
    /// </summary>
    public async Task<int> BuildAsync(Arguments a)
    {
        var json = a.Flag("json");
        var want = await api.PostAsync("api/v1/wants", WantBody(a, "cli"));
        var id = S(want, "want_id");
        var clock = Stopwatch.StartNew();
        if (!json) Console.WriteLine($"building {Refs(want, "partitions")} (want {id})");
        JsonElement detail;
        TimeSpan took;
        if (!Console.IsOutputRedirected && !json)
        {
            detail = await RedrawUntilEndedAsync(id, clock);
            took = clock.Elapsed;
        }
        else
        {
            var progress = new BuildProgress(id);
            await foreach (var e in new WantTimeline(api, id).FollowAsync())
                if (!json && progress.Line(e) is { } line) Console.WriteLine(line);
            detail = await api.GetAsync($"api/v1/wants/{id}");
            took = progress.Elapsed; // the server's clock, as the lines above it
        }
        var status = S(detail, "status");
        if (json) Json(detail);
        else Console.WriteLine($"want {id} {status} after {took.TotalSeconds:0.0} s{(S(detail, "reason") is { Length: > 0 } r ? $": {r}" : "")}");
        return status switch { "satisfied" => ExitCodes.Ok, "failed" => ExitCodes.Failed, "expired" => ExitCodes.Expired, _ => ExitCodes.Cancelled };
    }

    /// <summary>The want's page, its children and the running jobs, redrawn in place four times a second until it ends.</summary>
    private async Task<JsonElement> RedrawUntilEndedAsync(string id, Stopwatch clock)
    {
        var drawn = 0;
        while (true)
        {
            var detail = await api.GetAsync($"api/v1/wants/{id}");
            var status = S(detail, "status");
            var lines = new List<string>();
            foreach (var p in detail.GetProperty("partition_states").EnumerateArray()) lines.Add($"  {S(p, "ref")}: {S(p, "status")}");
            foreach (var c in detail.GetProperty("child_wants").EnumerateArray()) lines.Add($"  child want {Short(S(c, "want_id"))} {Refs(c, "partitions")}: {S(c, "status")}");
            var runs = await api.GetAsync("api/v1/job-runs?status=running&limit=1000");
            foreach (var r in runs.GetProperty("job_runs").EnumerateArray()) lines.Add($"  running {S(r, "job_label")} {Short(S(r, "job_run_id"))}: {Refs(r, "partitions")}");
            if (drawn > 0) Console.Write($"\x1b[{drawn}F\x1b[J");
            Console.WriteLine($"{status} after {clock.Elapsed.TotalSeconds:0.0} s");
            foreach (var line in lines) Console.WriteLine(line);
            drawn = lines.Count + 1;
            if (WantTimeline.Ends.Values.Contains(status)) return detail;
            await Task.Delay(250);
        }
    }

    public async Task<int> PartitionsAsync(Arguments a)
    {
        var verb = a.Positional.Count > 0 ? a.Positional[0] : throw new CliException(ExitCodes.Usage, "usage: databuild partitions list|status|mark-available");
        a.Positional.RemoveAt(0);
        var json = a.Flag("json");
        switch (verb)
        {
            case "list":
                var query = Query(("status", a.Option("status")), ("pattern", a.Option("pattern")), ("limit", "1000"));
                a.RejectUnknown();
                var page = await api.GetAsync($"api/v1/partitions{query}");
                if (json) { Json(page); return ExitCodes.Ok; }
                Table(["PARTITION", "STATUS", "OWNER", "UPDATED", "WAITING"], page.GetProperty("partitions").EnumerateArray().Select(p => (IReadOnlyList<string>)
                    [S(p, "ref"), S(p, "status"), p.TryGetProperty("owner", out var o) && o.ValueKind == JsonValueKind.Object ? $"{S(o, "kind")}:{S(o, "name")}" : "", S(p, "updated_at"), S(p, "waiting_wants")]));
                return ExitCodes.Ok;
            case "status":
                var target = Single(a, "partitions status <ref>");
                a.RejectUnknown();
                var partition = await api.GetAsync($"api/v1/partitions/{Uri.EscapeDataString(target)}");
                if (json) Json(partition); else Console.WriteLine($"{S(partition, "ref")}: {S(partition, "status")}{(S(partition, "reason") is { Length: > 0 } r ? $" ({r})" : "")}");
                return ExitCodes.Ok;
            case "mark-available":
                var external = Single(a, "partitions mark-available <ref>");
                a.RejectUnknown();
                var marked = await api.PostAsync($"api/v1/partitions/{Uri.EscapeDataString(external)}/available", null);
                if (json) Json(marked); else Console.WriteLine($"{S(marked, "ref")}: {S(marked, "status")}");
                return ExitCodes.Ok;
            default:
                throw new CliException(ExitCodes.Usage, $"unknown partitions command '{verb}': use list, status or mark-available");
        }
    }

    public async Task<int> JobRunsAsync(Arguments a)
    {
        if (a.Positional.Count != 1 || a.Positional[0] != "list") throw new CliException(ExitCodes.Usage, "usage: databuild job-runs list [--status S] [--job LABEL] [--json]");
        var query = Query(("status", a.Option("status")), ("job_label", a.Option("job")), ("limit", "1000"));
        var json = a.Flag("json");
        a.RejectUnknown();
        var page = await api.GetAsync($"api/v1/job-runs{query}");
        if (json) { Json(page); return ExitCodes.Ok; }
        Table(["RUN", "JOB", "STATUS", "ATTEMPT", "STARTED", "PARTITIONS", "REASON"], page.GetProperty("job_runs").EnumerateArray().Select(r => (IReadOnlyList<string>)
            [S(r, "job_run_id"), S(r, "job_label"), S(r, "status"), S(r, "attempt"), S(r, "started_at"), Refs(r, "partitions"), S(r, "reason")]));
        return ExitCodes.Ok;
    }

    public async Task<int> LogsAsync(Arguments a)
    {
        var id = Single(a, "logs <job_run_id>");
        var json = a.Flag("json");
        a.RejectUnknown();
        var logs = await api.GetAsync($"api/v1/job-runs/{Uri.EscapeDataString(id)}/logs");
        if (json) { Json(logs); return ExitCodes.Ok; }
        Console.Write(S(logs, "stdout"));
        var stderr = S(logs, "stderr");
        if (stderr.Length > 0) { Console.Out.Flush(); Console.Error.Write(stderr); }
        return ExitCodes.Ok;
    }

    public async Task<int> EventsAsync(Arguments a, CancellationToken ct)
    {
        var follow = a.Flag("follow");
        var json = a.Flag("json");
        var after = a.Option("after") ?? "0";
        var types = a.Option("types");
        a.RejectUnknown();
        while (!ct.IsCancellationRequested)
        {
            var page = await api.GetAsync($"api/v1/events{Query(("after", after), ("types", types), ("limit", "1000"), ("wait_seconds", follow ? "30" : null))}", ct);
            foreach (var e in page.GetProperty("events").EnumerateArray())
            {
                if (json) Console.WriteLine(e.GetRawText());
                else Console.WriteLine($"{S(e, "index"),16}  {S(e, "timestamp")}  {S(e, "type"),-26} {e.GetProperty(S(e, "type")).GetRawText()}");
            }
            after = S(page, "next_idx");
            if (!follow && !page.GetProperty("has_more").GetBoolean()) return ExitCodes.Ok;
        }
        return ExitCodes.Ok;
    }

    private static void PrintWant(JsonElement w)
    {
        Console.WriteLine($"want {S(w, "want_id")}: {S(w, "status")}{(S(w, "reason") is { Length: > 0 } r ? $" ({r})" : "")}");
        Console.WriteLine($"  data timestamp {S(w, "data_timestamp")}, TTL deadline {S(w, "ttl_deadline")}, SLA deadline {(S(w, "sla_deadline") is { Length: > 0 } sla ? sla : "none")}{(w.GetProperty("sla_violated").GetBoolean() ? $" (missed at {S(w, "sla_violated_at")})" : "")}");
        Console.WriteLine($"  source {S(w.GetProperty("source"), "type")}, created {S(w, "created_at")}{(S(w, "parent_want_id") is { Length: > 0 } parent ? $", parent {parent}" : "")}");
        foreach (var p in w.GetProperty("partition_states").EnumerateArray()) Console.WriteLine($"  {S(p, "ref")}: {S(p, "status")}");
        foreach (var c in w.GetProperty("child_wants").EnumerateArray()) Console.WriteLine($"  child want {S(c, "want_id")} {Refs(c, "partitions")}: {S(c, "status")}");
    }

    private static object WantBody(Arguments a, string source)
    {
        if (a.Positional.Count == 0) throw new CliException(ExitCodes.Usage, "name at least one partition ref");
        var body = new Dictionary<string, object?> { ["partitions"] = a.Positional.ToArray(), ["source"] = new { type = source, name = Environment.UserName } };
        if (a.Option("data-timestamp") is { } ts) body["data_timestamp"] = Arguments.ParseTimestamp(ts);
        if (a.Option("ttl") is { } ttl) body["ttl_seconds"] = Arguments.ParseDuration("ttl", ttl);
        if (a.Option("sla") is { } sla) body["sla_seconds"] = Arguments.ParseDuration("sla", sla);
        if (a.Option("comment") is { } comment) body["comment"] = comment;
        a.Flag("json");
        a.RejectUnknown();
        return body;
    }

    private static string Single(Arguments a, string usage) =>
        a.Positional.Count == 1 ? a.Positional[0] : throw new CliException(ExitCodes.Usage, $"usage: databuild {usage}");

    private static string Query(params (string Name, string? Value)[] parameters)
    {
        var present = parameters.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return present.Count == 0 ? "" : "?" + string.Join("&", present);
    }
}
