using System.Net;
using System.Text.RegularExpressions;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Silo;

/// <summary>deploy/kubernetes cannot be applied here (no cluster); this keeps it pointed at what the silo serves.</summary>
public sealed partial class DeployManifestTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-deploy-").FullName;

    [GeneratedRegex(@"path:\s*""?(/[A-Za-z0-9/_-]*)")]
    private static partial Regex ProbePath();

    [GeneratedRegex(@"(?:containerPort:\s*|prometheus\.io/port:\s*""|EXPOSE\s+|http://0\.0\.0\.0:)(\d+)")]
    private static partial Regex Port();

    [Fact]
    public async Task The_kubernetes_probes_and_metrics_scrape_use_paths_a_silo_serves_on_the_port_its_image_listens_on()
    {
        var root = RepositoryRoot();
        var deployment = await File.ReadAllTextAsync(Path.Combine(root, "deploy", "kubernetes", "silo-deployment.yaml"));
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(root, "deploy", "Dockerfile"));

        var paths = ProbePath().Matches(deployment).Select(m => m.Groups[1].Value).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["/healthz", "/metrics", "/readyz"], paths);
        var ports = Port().Matches(deployment + dockerfile).Select(m => m.Groups[1].Value).ToList();
        Assert.True(ports.Count >= 4, $"ports found: {string.Join(", ", ports)}"); // container, scrape, EXPOSE, --urls
        Assert.Single(ports.Distinct());

        await using var silo = SiloProcess.Start($"sqlite:{Path.Combine(_folder, "databuild.db")}");
        await silo.WaitReadyAsync();
        foreach (var path in paths) Assert.Equal(HttpStatusCode.OK, (await silo.Http.GetAsync(path)).StatusCode);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DataBuild.sln"))) return dir.FullName;
        throw new InvalidOperationException($"DataBuild.sln not found above {AppContext.BaseDirectory}");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
