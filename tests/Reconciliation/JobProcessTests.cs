using System.Diagnostics;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Grains.Jobs;

namespace DataBuild.Tests.Reconciliation;

/// <summary>The job protocol at the process level, including the awkward jobs real users write.</summary>
public sealed class JobProcessTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-process-").FullName;

    private async Task<JobOutcome> RunAsync(string script, int timeoutSeconds = 60)
    {
        var path = Path.Combine(_folder, $"job{Guid.NewGuid():N}.sh");
        await File.WriteAllTextAsync(path, "#!/usr/bin/env bash\n" + script + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var job = new JobConfig { Label = "j", Entrypoint = Path.GetFileName(path), PartitionPatterns = ["p/.*"], TimeoutSeconds = timeoutSeconds };
        var graph = new GraphConfig { GraphLabel = "g", Jobs = [job], BaseDirectory = _folder };
        return await JobProcess.RunAsync(graph, job, "run-1", ["p/1", "p/2"], CancellationToken.None);
    }

    [Fact]
    public async Task The_environment_arguments_and_folder_follow_the_protocol()
    {
        var outcome = await RunAsync("""echo "$DATABUILD_JOB_RUN_ID|$DATABUILD_JOB_LABEL|$DATABUILD_GRAPH_LABEL|$DATABUILD_PARTITIONS|$*|$(pwd)" """);
        Assert.Equal(JobRunStatus.Succeeded, outcome.Status);
        Assert.Equal($"run-1|j|g|[\"p/1\",\"p/2\"]|p/1 p/2|{_folder}", outcome.Stdout.Trim());
    }

    [Fact]
    public async Task Missing_deps_are_read_even_after_more_output_than_is_kept()
    {
        var outcome = await RunAsync("""head -c 3000000 /dev/zero | tr '\0' 'x'; echo; echo '__DATABUILD_ERROR__::{"missing_deps":["up/1","up/2"]}'; exit 3""");
        Assert.Equal(JobRunStatus.MissingDeps, outcome.Status);
        Assert.Equal(["up/1", "up/2"], outcome.MissingDeps);
        Assert.Contains("were not kept", outcome.Stdout);
    }

    [Fact]
    public async Task A_job_that_leaves_a_child_holding_its_output_still_finishes()
    {
        var clock = Stopwatch.StartNew();
        var outcome = await RunAsync("sleep 60 & echo started a daemon; exit 0");
        Assert.Equal(JobRunStatus.Succeeded, outcome.Status);
        Assert.Contains("started a daemon", outcome.Stdout);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed.TotalSeconds:0} s");
    }

    [Fact]
    public async Task A_non_zero_exit_without_the_protocol_line_is_a_failure_with_its_code()
    {
        var outcome = await RunAsync("echo oops >&2; exit 7");
        Assert.Equal(JobRunStatus.Failed, outcome.Status);
        Assert.Equal(7, outcome.ExitCode);
        Assert.Contains("oops", outcome.Stderr);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
