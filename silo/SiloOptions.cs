using DataBuild.Runtime.Storage;
using Microsoft.Extensions.Configuration;

namespace DataBuild.Silo;

/// <summary>The silo command line: <c>[--graph PATH] [--store STORE] [--urls URL]</c>.</summary>
public sealed record SiloOptions(StoreLocation Store, string? GraphPath, string Urls)
{
    public const string DefaultUrls = "http://127.0.0.1:8080";

    public static SiloOptions From(IConfiguration configuration)
    {
        var store = configuration["store"];
        if (string.IsNullOrWhiteSpace(store)) store = Environment.GetEnvironmentVariable("DATABUILD_STORE");
        if (string.IsNullOrWhiteSpace(store)) store = StoreLocation.Default;
        var urls = configuration["urls"];
        return new SiloOptions(StoreLocation.Parse(store), configuration["graph"], string.IsNullOrWhiteSpace(urls) ? DefaultUrls : urls);
    }
}
