using System.Net.Http.Json;
using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Reconciliation;

/// <summary>The README's promise: with no arguments the silo serves the example graph, and one request builds a weekly report from nothing.</summary>
public sealed class ExampleGraphTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-example-").FullName;

    [Fact]
    public async Task One_request_builds_a_weekly_report_from_nothing()
    {
        var graph = CopyExample(_folder);
        var example = Path.GetDirectoryName(graph)!;
        await using var silo = SiloProcess.Start($"sqlite:{Path.Combine(_folder, "databuild.db")}", _folder, "--graph", graph);
        await silo.WaitReadyAsync();

        var id = await silo.CreateWantAsync("report/weekly/week=2024-01-01");
        await silo.UntilWantAsync(id, w => w.GetProperty("status").GetString() is "satisfied" or "failed", TimeSpan.FromSeconds(90), "the weekly report");

        var want = JsonDocument.Parse(await silo.Http.GetStringAsync($"/api/v1/wants/{id}")).RootElement;
        Assert.Equal("satisfied", want.GetProperty("status").GetString());
        var report = File.ReadAllLines(Path.Combine(example, "data", "report", "weekly", "week=2024-01-01.tsv"));
        Assert.NotEmpty(report);
        Assert.All(report, line => Assert.Equal(3, line.Split('\t').Length));
        Assert.Equal(7, Directory.GetFiles(Path.Combine(example, "data", "summary", "daily")).Length);
        Assert.Equal(7, want.GetProperty("child_wants").GetArrayLength());
    }

    /// <summary>A copy of the bundled example in <paramref name="folder"/>, so a test's data stays there; its databuild.json.</summary>
    public static string CopyExample(string folder)
    {
        var example = Path.Combine(folder, "reviews");
        CopyDirectory(Path.Combine(AppContext.BaseDirectory, "examples", "reviews"), example);
        return Path.Combine(example, "databuild.json");
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}data{Path.DirectorySeparatorChar}")) continue;
            File.Copy(file, file.Replace(from, to), overwrite: true);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file.Replace(from, to), File.GetUnixFileMode(file));
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
