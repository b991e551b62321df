using System.Net;
using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Silo;

public sealed class EventQueryValidationTests(SqliteSiloFixture fixture) : IClassFixture<SqliteSiloFixture>
{
    [Theory]
    [InlineData("/api/v1/events?after=-1", "Invalid after")]
    [InlineData("/api/v1/events?after=1&after=2", "Invalid after")]
    [InlineData("/api/v1/events?limit=abc", "Invalid limit")]
    [InlineData("/api/v1/events?limit=100000", "Invalid limit")]
    [InlineData("/api/v1/events?wait_seconds=3600", "Invalid wait_seconds")]
    [InlineData("/api/v1/events?types=want_created", "Invalid event filter")]
    [InlineData("/api/v1/events?partition_pattern=day/(", "Invalid event filter")]
    public async Task Bad_event_queries_get_a_problem_json_400(string path, string title)
    {
        using var response = await fixture.Silo.Http.GetAsync(path);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(title, problem.RootElement.GetProperty("title").GetString());
        Assert.False(string.IsNullOrEmpty(problem.RootElement.GetProperty("detail").GetString()));
    }

    [Fact]
    public async Task An_unknown_path_is_a_404_problem()
    {
        using var response = await fixture.Silo.Http.GetAsync("/api/v1/nothing-here");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
