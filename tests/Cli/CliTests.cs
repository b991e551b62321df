using System.Text.Json;
using DataBuild.Testing;
using DataBuild.Tests.Infrastructure;
using DataBuild.Tests.Reconciliation;

namespace DataBuild.Tests.Cli;

/// <summary>A silo process on the reconciliation test graph, shared by the CLI tests.</summary>
public sealed class CliSiloFixture : IAsyncLifetime
{
    public string Folder { get; } = Directory.CreateTempSubdirectory("databuild-cli-").FullName;
    public SiloProcess Silo { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Silo = SiloProcess.Start($"sqlite:{Path.Combine(Folder, "databuild.db")}", Folder, "--graph", JobTestGraph.Write(Folder));
        await Silo.WaitReadyAsync();
    }

    public async Task DisposeAsync()
    {
        await Silo.DisposeAsync();
        Directory.Delete(Folder, recursive: true);
    }
}

public sealed class CliTests(CliSiloFixture fixture) : IClassFixture<CliSiloFixture>
{
    private Task<CliProcess.Result> Run(params string[] args) => CliProcess.RunAsync(fixture.Silo.Url, args);

    [Fact]
    public async Task Wants_are_created_listed_shown_and_cancelled_and_json_parses_back()
    {
        var created = await Run("want", "create", "ext/cli-a", "--ttl", "2d", "--sla", "90m", "--comment", "from the cli", "--data-timestamp", "2030-01-01", "--json");
        Assert.True(created.ExitCode == 0, created.Stderr);
        var want = JsonDocument.Parse(created.Stdout).RootElement;
        var id = want.GetProperty("want_id").GetString()!;
        Assert.Equal(172800, want.GetProperty("ttl_seconds").GetInt64());
        Assert.Equal(5400, want.GetProperty("sla_seconds").GetInt64());
        Assert.Equal("cli", want.GetProperty("source").GetProperty("type").GetString());
        Assert.Equal("2030-01-01T00:00:00.000Z", want.GetProperty("data_timestamp").GetString());

        var list = await Run("want", "list", "--partition", "ext/cli-a", "--json");
        Assert.Equal([id], JsonDocument.Parse(list.Stdout).RootElement.GetProperty("wants").EnumerateArray().Select(w => w.GetProperty("want_id").GetString()));
        var table = await Run("want", "list", "--status", "idle");
        Assert.Contains("WANT", table.Stdout);
        Assert.Contains(id, table.Stdout);

        var status = await Run("want", "status", id);
        Assert.Contains($"want {id}: idle", status.Stdout);
        var byRef = await Run("want", "status", "ext/cli-a");
        Assert.Contains("partition ext/cli-a: missing", byRef.Stdout);

        var cancelled = await Run("want", "cancel", id);
        Assert.Equal(0, cancelled.ExitCode);
        Assert.Contains("cancelled", cancelled.Stdout);
        var again = await Run("want", "cancel", id);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("Want already ended", again.Stderr);
    }

    [Fact]
    public async Task Build_of_a_partition_whose_job_always_fails_exits_with_the_failed_code()
    {
        var build = await Run("build", "broken/cli");
        Assert.True(build.ExitCode == 2, $"exit {build.ExitCode}: {build.Stdout} {build.Stderr}");
        Assert.Contains("failed", build.Stdout);
        Assert.Contains("exited with code 2", build.Stdout);
    }

    [Fact]
    public async Task Build_follows_a_chain_line_by_line_when_not_on_a_terminal_and_exits_zero()
    {
        var build = await Run("build", "chain/2/cli");
        Assert.True(build.ExitCode == 0, $"exit {build.ExitCode}: {build.Stdout} {build.Stderr}");
        // Every transition, in order, however quickly it passed: the job asks for chain/1, a child want builds it, and
        // chain/2 is built again once its upstream is available. Order is asserted within each partition and want: across
        // them the log has no causal order to promise. chain/2's turn creates the child want by a call, and a callee's
        // turn commits before its caller's, so chain/1 may start building before chain/2's upstream_waiting is logged.
        AssertInOrder(build.Stdout, "chain/2/cli: building", "chain/2/cli: upstream_waiting (missing dependencies: chain/1/cli",
            "chain/2/cli: building", "chain/2/cli: available", "want satisfied");
        // The child want is told in the turn that makes chain/1 available; the followed want may end before that message
        // is delivered, and the follower stops at its end, so the child's satisfaction is printed only if it came first.
        string[] child = ["chain/1/cli: created", "chain/1/cli: building", "chain/1/cli: available"];
        AssertInOrder(build.Stdout, build.Stdout.Contains("chain/1/cli: satisfied", StringComparison.Ordinal) ? [.. child, "chain/1/cli: satisfied"] : child);
        Assert.Contains("satisfied after", build.Stdout.TrimEnd('\n').Split('\n')[^1]);
    }

    /// <summary>Each of <paramref name="expected"/> is on a line of <paramref name="output"/> after the previous one's.</summary>
    private static void AssertInOrder(string output, params string[] expected)
    {
        var at = 0;
        foreach (var line in output.Split('\n'))
            if (at < expected.Length && line.Contains(expected[at], StringComparison.Ordinal)) at++;
        Assert.True(at == expected.Length, $"missing '{(at < expected.Length ? expected[at] : "")}' in order in:\n{output}");
    }

    [Fact]
    public async Task Build_of_a_chain_deeper_than_a_request_can_name_still_prints_every_partition_it_built()
    {
        // 120 wants waiting at once: more than the follower names in its request, so it reads the log unfiltered.
        const int Depth = 120;
        var build = await Run("build", $"chain/{Depth}/cli-deep");
        Assert.True(build.ExitCode == 0, $"exit {build.ExitCode}: {build.Stderr}");
        for (var level = 1; level <= Depth; level++)
            Assert.Contains($"chain/{level}/cli-deep: available", build.Stdout);
        // Every child want is found as it is created. (Not every child's satisfaction: the last one's message may be
        // delivered after the followed want has ended, and the follower stops there.)
        Assert.Equal(Depth - 1, build.Stdout.Split('\n').Count(l => l.Contains("child want", StringComparison.Ordinal) && l.EndsWith(": created", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Partitions_job_runs_and_logs_are_listed()
    {
        Assert.Equal(0, (await Run("build", "leaf/cli-logs")).ExitCode);
        var partitions = JsonDocument.Parse((await Run("partitions", "list", "--pattern", "leaf/cli-.*", "--json")).Stdout).RootElement;
        Assert.Equal("available", partitions.GetProperty("partitions")[0].GetProperty("status").GetString());
        Assert.Contains("available", (await Run("partitions", "status", "leaf/cli-logs")).Stdout);
        var runs = JsonDocument.Parse((await Run("job-runs", "list", "--job", "leaf", "--json")).Stdout).RootElement.GetProperty("job_runs");
        var run = runs.EnumerateArray().First(r => r.GetProperty("partitions").EnumerateArray().Any(p => p.GetString() == "leaf/cli-logs"));
        var logs = await Run("logs", run.GetProperty("job_run_id").GetString()!);
        Assert.Contains("built leaf/cli-logs", logs.Stdout);
        var marked = await Run("partitions", "mark-available", "ext/cli-landed");
        Assert.Contains("ext/cli-landed: available", marked.Stdout);
        var events = await Run("events", "--types", "want_create", "--json");
        Assert.All(events.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.Equal("want_create", JsonDocument.Parse(line).RootElement.GetProperty("type").GetString()));
    }

    [Fact]
    public async Task Mistakes_get_messages_that_say_what_to_do()
    {
        var noRefs = await Run("want", "create");
        Assert.Equal(64, noRefs.ExitCode);
        Assert.Contains("usage: databuild", noRefs.Stderr);
        var badDuration = await Run("want", "create", "ext/x", "--ttl", "5 weeks");
        Assert.Equal(64, badDuration.ExitCode);
        Assert.Contains("90s, 30m, 33h or 30d", badDuration.Stderr);
        var typo = await Run("want", "list", "--stauts", "idle");
        Assert.Equal(64, typo.ExitCode);
        Assert.Contains("--stauts", typo.Stderr);
        var refused = await Run("want", "create", "nobody/owns/this");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("Unknown partition", refused.Stderr);
        Assert.Contains("nobody/owns/this", refused.Stderr);
    }

    [Fact]
    public async Task An_unreachable_server_is_named_with_how_to_start_one()
    {
        var url = $"http://127.0.0.1:{PostgresServer.FreePort()}";
        var result = await CliProcess.RunAsync(url, "want", "list");
        Assert.Equal(5, result.ExitCode);
        Assert.Contains(url, result.Stderr);
        Assert.Contains("dotnet run --project silo", result.Stderr);
    }
}

/// <summary>The CLI against the bundled example: the deepest partition, from nothing.</summary>
public sealed class CliExampleTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-cli-example-").FullName;

    [Fact]
    public async Task Build_of_the_example_graphs_deepest_partition_from_nothing_exits_zero()
    {
        await using var silo = SiloProcess.Start($"sqlite:{Path.Combine(_folder, "databuild.db")}", _folder,
            "--graph", ExampleGraphTests.CopyExample(_folder));
        await silo.WaitReadyAsync();
        var build = await CliProcess.RunAsync(silo.Url, "build", "report/weekly/week=2024-01-01", "--data-timestamp", "2024-01-01", "--ttl", "3650d", "--sla", "33h");
        Assert.True(build.ExitCode == 0, $"exit {build.ExitCode}: {build.Stdout} {build.Stderr}");
        Assert.Contains("report/weekly/week=2024-01-01: available", build.Stdout);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
