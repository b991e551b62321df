using DataBuild.Api.JobRuns;
using DataBuild.Api.Metrics;
using DataBuild.Api.Partitions;
using DataBuild.Api.Wants;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace DataBuild.Api;

public static class DataBuildApi
{
    /// <summary>Maps every endpoint of HTTP API v1 plus health.</summary>
    public static IEndpointRouteBuilder MapDataBuildApi(this IEndpointRouteBuilder app)
    {
        app.MapHealth();
        app.MapMetrics();
        var v1 = app.MapGroup("/api/v1");
        v1.MapWants();
        v1.MapPartitions();
        v1.MapJobRuns();
        v1.MapEvents();
        return app;
    }
}
