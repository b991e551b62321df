using DataBuild.Silo;
using DataBuild.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Tests.Infrastructure;

/// <summary>A whole silo (store, grain host, HTTP API on a loopback port) in the test process, on a clock of the test's choosing.</summary>
public sealed class InProcessSilo : IAsyncDisposable
{
    private readonly WebApplication _app;

    private InProcessSilo(WebApplication app, string url)
    {
        _app = app;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public HttpClient Http { get; }
    public IServiceProvider Services => _app.Services;

    /// <param name="services">Registrations that replace the silo's own (the last registration of a service wins).</param>
    public static async Task<InProcessSilo> StartAsync(string store, string graphPath, TimeProvider clock, Action<IServiceCollection>? services = null)
    {
        var url = $"http://127.0.0.1:{PostgresServer.FreePort()}";
        var app = SiloApplication.Build(
            ["--store", store, "--urls", url, "--graph", graphPath, "--Logging:LogLevel:Default=Warning"],
            registrations =>
            {
                registrations.AddSingleton(clock);
                services?.Invoke(registrations);
            });
        await app.StartAsync();
        return new InProcessSilo(app, url);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Http.Dispose();
    }
}

/// <summary>A small graph for API tests: external "ext/…" partitions and a job for "built/…".</summary>
public static class TestGraphs
{
    public static string Write(string folder)
    {
        var path = Path.Combine(folder, "databuild.json");
        File.WriteAllText(path, """
            { "graph_label": "tests",
              "jobs": [ { "label": "builder", "entrypoint": "/bin/true", "partition_patterns": ["built/.*"] } ],
              "external_patterns": ["ext/.*"] }
            """);
        return path;
    }
}
