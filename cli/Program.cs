using DataBuild.Cli;

// databuild [--server URL] <command> …
const string Usage = """
    usage: databuild [--server URL] <command>

      want create <ref>… [--data-timestamp T] [--ttl 30d] [--sla 33h] [--comment C] [--json]
      want list [--status S] [--partition P] [--json]
      want status <ref|want_id> [--json]
      want cancel <want_id> [--json]
      build <ref>… [--data-timestamp T] [--ttl D] [--sla D] [--comment C] [--json]
                    creates a want and follows it; exit 0 only when satisfied
                    (2 failed, 3 expired, 4 cancelled, 5 service unreachable)
      partitions list [--status S] [--pattern REGEX] [--json]
      partitions status <ref> [--json]
      partitions mark-available <ref> [--json]
      job-runs list [--status S] [--job LABEL] [--json]
      logs <job_run_id>
      events [--follow] [--after N] [--types T] [--json]

    The server is --server, else DATABUILD_SERVER, else http://127.0.0.1:8080.
    Durations: 90s, 30m, 33h, 30d. Timestamps: 2024-01-01, 2024-01-01T09:00:00Z or unix seconds.
    """;

var rest = args.ToList();
var server = Environment.GetEnvironmentVariable("DATABUILD_SERVER") is { Length: > 0 } env ? env : "http://127.0.0.1:8080";
var serverAt = rest.FindIndex(a => a == "--server" || a.StartsWith("--server=", StringComparison.Ordinal));
if (serverAt >= 0)
{
    if (rest[serverAt].Contains('=')) { server = rest[serverAt]["--server=".Length..]; rest.RemoveAt(serverAt); }
    else if (serverAt + 1 < rest.Count) { server = rest[serverAt + 1]; rest.RemoveRange(serverAt, 2); }
    else { Console.Error.WriteLine("databuild: --server needs a URL\n\n" + Usage); return ExitCodes.Usage; }
}
if (rest.Count == 0 || rest[0] is "-h" or "--help" or "help") { Console.WriteLine(Usage); return rest.Count == 0 ? ExitCodes.Usage : ExitCodes.Ok; }
if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
{
    Console.Error.WriteLine($"databuild: --server '{server}' is not an http(s) URL");
    return ExitCodes.Usage;
}

using var api = new ApiClient(server);
var commands = new Commands(api);
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
try
{
    var command = rest[0];
    var tail = rest.Skip(1).ToList();
    return command switch
    {
        "want" when tail.Count > 0 => tail[0] switch
        {
            "create" => await commands.WantCreateAsync(Commands.Parse(tail.Skip(1))),
            "list" => await commands.WantListAsync(Commands.Parse(tail.Skip(1))),
            "status" => await commands.WantStatusAsync(Commands.Parse(tail.Skip(1))),
            "cancel" => await commands.WantCancelAsync(Commands.Parse(tail.Skip(1))),
            _ => throw new CliException(ExitCodes.Usage, $"unknown want command '{tail[0]}': use create, list, status or cancel"),
        },
        "build" => await commands.BuildAsync(Commands.Parse(tail)),
        "partitions" => await commands.PartitionsAsync(Commands.Parse(tail)),
        "job-runs" => await commands.JobRunsAsync(Commands.Parse(tail)),
        "logs" => await commands.LogsAsync(Commands.Parse(tail)),
        "events" => await commands.EventsAsync(Commands.Parse(tail), cancel.Token),
        _ => throw new CliException(ExitCodes.Usage, $"unknown command '{string.Join(' ', rest.Take(2))}'"),
    };
}
catch (CliException e)
{
    Console.Error.WriteLine($"databuild: {e.Message}");
    if (e.ExitCode == ExitCodes.Usage) Console.Error.WriteLine("\n" + Usage);
    return e.ExitCode;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    return ExitCodes.Ok;
}
