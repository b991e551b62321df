using System.Net;
using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Silo;

/// <summary>A graceful stop (SIGTERM, as in a Kubernetes rolling update) on a silo that has followers waiting.</summary>
public sealed class SiloStopTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-stop-").FullName;

    [Fact]
    public async Task A_stopping_silo_answers_its_waiting_event_followers_at_once_and_exits_cleanly()
    {
        await using var silo = SiloProcess.Start($"sqlite:{Path.Combine(_folder, "databuild.db")}");
        await silo.WaitReadyAsync();
        var poll = silo.Http.GetAsync("/api/v1/events?wait_seconds=60");
        await silo.WaitForWaitingLongPollAsync();

        silo.Terminate();

        // Before: the poll held the stop until the host's 30 s timeout, then lost its connection.
        using var response = await poll.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Empty(page.RootElement.GetProperty("events").EnumerateArray());
        Assert.Equal(0, await silo.WaitForExitAsync(TimeSpan.FromSeconds(15)));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
