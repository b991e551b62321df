using DataBuild.GrainInterfaces;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using DataBuild.GrainInterfaces.Graph;

namespace DataBuild.Grains.Jobs;

/// <summary>What a job process did: its exit, missing dependencies it reported, and its (bounded) output.</summary>
/// <remarks><paramref name="Abandoned"/>: killed because the caller gave the run up (this silo stopping, or its lease lost), not by the job's fault.</remarks>
public sealed record JobOutcome(string Status, int? ExitCode, string? Reason, IReadOnlyList<string> MissingDeps, string Stdout, string Stderr, int? Pid,
    bool Abandoned = false);

/// <summary>
/// Runs one job process per the job protocol: <c>&lt;entrypoint&gt; &lt;args…&gt; &lt;ref…&gt;</c> in the graph's folder,
/// with DATABUILD_* in the environment. Exit 0: succeeded. A stdout line
/// <c>__DATABUILD_ERROR__::{"missing_deps":[…]}</c> and a non-zero exit: missing dependencies. Anything else,
/// or running past the job's timeout (the whole process tree is killed): failed.
/// </summary>
public static class JobProcess
{
    public const string ErrorPrefix = "__DATABUILD_ERROR__::";
    public const int MaxCapturedChars = 1 << 20; // per stream; the rest is dropped and counted

    public static async Task<JobOutcome> RunAsync(GraphConfig graph, JobConfig job, string jobRunId, IReadOnlyList<string> partitions,
        CancellationToken abandon)
    {
        var start = new ProcessStartInfo(graph.ResolveEntrypoint(job))
        {
            WorkingDirectory = graph.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in job.Args) start.ArgumentList.Add(arg);
        foreach (var partition in partitions) start.ArgumentList.Add(partition);
        foreach (var (key, value) in job.Environment) start.Environment[key] = value;
        start.Environment["DATABUILD_JOB_RUN_ID"] = jobRunId;
        start.Environment["DATABUILD_JOB_LABEL"] = job.Label;
        start.Environment["DATABUILD_GRAPH_LABEL"] = graph.GraphLabel;
        start.Environment["DATABUILD_PARTITIONS"] = JsonSerializer.Serialize(partitions);

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("the process did not start");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return new JobOutcome(JobRunStatus.Failed, null, $"could not start {start.FileName}: {e.Message}", [], "", "", null);
        }
        using (process)
        {
            process.StandardInput.Close();
            var stdout = new BoundedText();
            var stderr = new BoundedText();
            var reading = Task.WhenAll(PumpAsync(process.StandardOutput, stdout), PumpAsync(process.StandardError, stderr));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(abandon);
            timeout.CancelAfter(TimeSpan.FromSeconds(job.TimeoutSeconds));
            string? killedBecause = null;
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                killedBecause = abandon.IsCancellationRequested ? "abandoned: this silo lost the run's lease or is stopping" : $"timed out after {job.TimeoutSeconds} s";
                try { process.Kill(entireProcessTree: true); } catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or AggregateException) { }
                await process.WaitForExitAsync(CancellationToken.None);
            }
            // A grandchild that inherited stdout (a daemon started with &) can hold the pipes open after the job
            // exits: take what arrived within a grace period rather than wait for it.
            try { await reading.WaitAsync(TimeSpan.FromSeconds(5)); }
            catch (TimeoutException) { stderr.Append("\n[databuild: output still open 5 s after the job exited; the rest was not kept]\n"); }
            var output = stdout.ToString();
            var missing = MissingDeps(stdout.ProtocolLines);
            var exit = process.ExitCode;
            if (killedBecause is not null)
                return new JobOutcome(JobRunStatus.Failed, exit, killedBecause, [], output, stderr.ToString(), process.Id, Abandoned: abandon.IsCancellationRequested);
            if (exit == 0) return new JobOutcome(JobRunStatus.Succeeded, 0, null, [], output, stderr.ToString(), process.Id);
            if (missing.Count > 0) return new JobOutcome(JobRunStatus.MissingDeps, exit, $"missing dependencies: {string.Join(", ", missing)}", missing, output, stderr.ToString(), process.Id);
            return new JobOutcome(JobRunStatus.Failed, exit, $"exited with code {exit}", [], output, stderr.ToString(), process.Id);
        }
    }

    /// <summary>The refs of the last well-formed missing-dependencies line, if any.</summary>
    public static IReadOnlyList<string> MissingDeps(string stdout)
    {
        IReadOnlyList<string> found = [];
        foreach (var line in stdout.Split('\n'))
        {
            var trimmed = line.TrimEnd('\r');
            if (!trimmed.StartsWith(ErrorPrefix, StringComparison.Ordinal)) continue;
            try
            {
                using var json = JsonDocument.Parse(trimmed[ErrorPrefix.Length..]);
                if (json.RootElement.TryGetProperty("missing_deps", out var deps) && deps.ValueKind == JsonValueKind.Array)
                    found = deps.EnumerateArray().Where(d => d.ValueKind == JsonValueKind.String).Select(d => d.GetString()!).Where(d => d.Length > 0).Distinct().ToList();
            }
            catch (JsonException) { /* not a protocol line after all */ }
        }
        return found;
    }

    private static async Task PumpAsync(StreamReader reader, BoundedText into)
    {
        var buffer = new char[8192];
        int read;
        while ((read = await reader.ReadAsync(buffer)) > 0) into.Append(buffer.AsSpan(0, read));
        into.Finish();
    }

    /// <summary>Keeps the first <see cref="MaxCapturedChars"/> characters of a stream and counts the rest.</summary>
    private sealed class BoundedText
    {
        private readonly StringBuilder _text = new();
        private long _dropped;

        private readonly StringBuilder _line = new();

        /// <summary>Protocol lines seen anywhere in the stream, kept even past the size limit.</summary>
        public string ProtocolLines { get; private set; } = "";

        public void Append(ReadOnlySpan<char> chunk)
        {
            foreach (var c in chunk)
            {
                if (c == '\n') EndLine();
                else if (_line.Length < 1 << 20) _line.Append(c);
            }
            var room = MaxCapturedChars - _text.Length;
            if (room > 0) _text.Append(chunk[..Math.Min(room, chunk.Length)]);
            if (chunk.Length > room) _dropped += chunk.Length - Math.Max(room, 0);
        }

        /// <summary>The last line, if the stream did not end with a newline.</summary>
        public void Finish() => EndLine();

        private void EndLine()
        {
            if (_line.Length >= ErrorPrefix.Length && _line.ToString(0, ErrorPrefix.Length) == ErrorPrefix) ProtocolLines += _line + "\n";
            _line.Clear();
        }

        public override string ToString() => _dropped == 0 ? _text.ToString() : $"{_text}\n[databuild: {_dropped} more characters were not kept]\n";
    }
}
