using System.Net.Http.Json;
using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Api;

/// <summary>Real time, real silo: an SLA deadline two seconds ahead is flagged within a second of passing.</summary>
public abstract class RealTimeSlaConformance : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-sla-").FullName;
    private InProcessSilo _silo = null!;

    protected abstract Task<string> FreshStoreAsync(string folder);

    public async Task InitializeAsync() =>
        _silo = await InProcessSilo.StartAsync(await FreshStoreAsync(_folder), TestGraphs.Write(_folder), TimeProvider.System);

    public async Task DisposeAsync()
    {
        await _silo.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task An_sla_deadline_two_seconds_ahead_is_flagged_within_one_second_of_it()
    {
        var dataTimestamp = DateTimeOffset.UtcNow;
        var deadline = dataTimestamp.AddSeconds(2);
        using var created = await _silo.Http.PostAsJsonAsync("/api/v1/wants", new
        {
            partitions = new[] { "ext/realtime" },
            data_timestamp = dataTimestamp.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
            sla_seconds = 2,
        });
        created.EnsureSuccessStatusCode();
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("want_id").GetString();

        var flagged = await Eventually.UntilAsync(
            async () => JsonDocument.Parse(await _silo.Http.GetStringAsync($"/api/v1/wants/{id}")).RootElement.Clone(),
            w => w.GetProperty("sla_violated").GetBoolean(), TimeSpan.FromSeconds(10), "the SLA violation");
        var seen = DateTimeOffset.UtcNow;
        var violatedAt = DateTimeOffset.Parse(flagged.GetProperty("sla_violated_at").GetString()!);
        Assert.True(violatedAt >= deadline.AddMilliseconds(-1), $"flagged at {violatedAt:O}, before the deadline {deadline:O}");
        Assert.True(violatedAt - deadline <= TimeSpan.FromSeconds(1), $"flagged {(violatedAt - deadline).TotalMilliseconds:0} ms after the deadline");
        Assert.True(seen - deadline <= TimeSpan.FromSeconds(1.5), $"visible {(seen - deadline).TotalMilliseconds:0} ms after the deadline");
    }
}

public sealed class SqliteRealTimeSlaTests : RealTimeSlaConformance
{
    protected override Task<string> FreshStoreAsync(string folder) => Task.FromResult($"sqlite:{Path.Combine(folder, "databuild.db")}");
}

public sealed class PostgresRealTimeSlaTests(PostgresDatabase database) : RealTimeSlaConformance, IClassFixture<PostgresDatabase>
{
    protected override async Task<string> FreshStoreAsync(string folder) => $"postgres:{await database.CreateAnotherAsync()}";
}
