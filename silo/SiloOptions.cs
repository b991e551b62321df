using DataBuild.Runtime.Storage;
using Microsoft.Extensions.Configuration;

namespace DataBuild.Silo;

/// <summary>The silo command line: <c>[--graph PATH] [--store STORE] [--urls URL]</c>.</summary>
public sealed record SiloOptions(StoreLocation Store, string GraphPath, string Urls)
{
    public const string DefaultUrls = "http://127.0.0.1:8080";

    /// <summary>The example graph shipped next to the silo, served when no --graph is given.</summary>
    public static string BundledGraph => Path.Combine(AppContext.BaseDirectory, "examples", "reviews", "databuild.json");

    public static SiloOptions From(IConfiguration configuration)
    {
        var store = configuration["store"];
        if (string.IsNullOrWhiteSpace(store)) store = Environment.GetEnvironmentVariable("DATABUILD_STORE");
        if (string.IsNullOrWhiteSpace(store)) store = StoreLocation.Default;
        var urls = configuration["urls"];
        var graph = configuration["graph"];
        return new SiloOptions(StoreLocation.Parse(store), string.IsNullOrWhiteSpace(graph) ? BundledGraph : graph,
            string.IsNullOrWhiteSpace(urls) ? DefaultUrls : urls);
    }
}
