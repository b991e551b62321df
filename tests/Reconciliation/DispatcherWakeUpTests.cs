using System.Text.Json;
using DataBuild.Grains.Jobs;
using DataBuild.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Tests.Reconciliation;

/// <summary>
/// The dispatcher goes back to the queue when a slot frees only if a run may be waiting there. These tests pin that
/// a waiting run is not left for the safety net, here ten minutes long so that only a wake-up can start it in time.
/// </summary>
public sealed class DispatcherWakeUpTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-wakeup-").FullName;
    private InProcessSilo _silo = null!;

    public async Task InitializeAsync() =>
        _silo = await InProcessSilo.StartAsync($"postgres:{await database.CreateAnotherAsync()}", JobTestGraph.Write(_folder), TimeProvider.System,
            services => services.AddSingleton(new JobDispatcherOptions { Slots = 1, SafetyNet = TimeSpan.FromMinutes(10) }));

    [Fact]
    public async Task Runs_queued_while_the_silos_only_slot_is_busy_start_as_it_frees_not_when_the_safety_net_looks()
    {
        var first = await _silo.Http.CreateWantAsync("slow/first"); // runs for a second in the silo's only slot
        await Eventually.UntilAsync(() => PartitionStatusAsync("slow/first"), s => s == "building", Deadline, "the first run to start");
        // Both wait for the slot: "slow" is also at its max_concurrency of 1, and is looked at again each time a slot frees
        // until it can be claimed; "leaf" has room, and its run was queued while the slot was busy.
        var second = await _silo.Http.CreateWantAsync("slow/second");
        var third = await _silo.Http.CreateWantAsync("leaf/third");
        foreach (var want in new[] { first, second, third })
            await _silo.Http.UntilWantAsync(want, w => w.GetProperty("status").GetString() == "satisfied", Deadline, $"want {want} to be satisfied");
        Assert.Equal(1, JobTestGraph.Runs(_folder, "slow/second"));
        Assert.Equal(1, JobTestGraph.Runs(_folder, "leaf/third"));
    }

    private async Task<string?> PartitionStatusAsync(string partition) =>
        JsonDocument.Parse(await _silo.Http.GetStringAsync($"/api/v1/partitions/{Uri.EscapeDataString(partition)}")).RootElement.GetProperty("status").GetString();

    public async Task DisposeAsync()
    {
        await _silo.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}
