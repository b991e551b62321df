using DataBuild.Runtime.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace DataBuild.Api;

public static class HealthEndpoints
{
    private static readonly TimeSpan StoreProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary><c>/healthz</c>: the process serves requests. <c>/readyz</c>: and its store answers.</summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Json(new { status = "ok" })).WithName("Health");
        app.MapGet("/readyz", async (IDataStore store, CancellationToken cancellationToken) =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StoreProbeTimeout);
            return await store.IsReachableAsync(timeout.Token)
                ? Results.Json(new { status = "ready", store = store.Location.Kind.ToString().ToLowerInvariant() })
                : Problems.Unavailable("Store unreachable", $"The store {store.Location} did not answer within {StoreProbeTimeout.TotalSeconds:0} s.");
        }).WithName("Ready");
        return app;
    }
}
