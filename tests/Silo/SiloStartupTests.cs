using System.Net;
using System.Text.Json;
using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;
using static DataBuild.Tests.EventLog.SampleEvents;

namespace DataBuild.Tests.Silo;

public sealed class SiloStartupTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Two_silos_starting_at_once_on_an_empty_postgres_database_both_become_ready()
    {
        var connectionString = await database.CreateAnotherAsync();
        await using var a = SiloProcess.Start($"postgres:{connectionString}");
        await using var b = SiloProcess.Start($"postgres:{connectionString}");
        await Task.WhenAll(a.WaitReadyAsync(), b.WaitReadyAsync());

        // Events appended through the store are served by both.
        await using (var store = DataStore.Open(StoreLocation.Parse($"postgres:{connectionString}")))
        {
            await using var tx = await store.BeginAsync();
            await store.Events.AppendAsync(tx, [WantCreate("w-1", "reviews/date=2024-01-01")]);
            await tx.CommitAsync();
        }
        foreach (var silo in new[] { a, b })
        {
            using var page = JsonDocument.Parse(await silo.Http.GetStringAsync("/api/v1/events"));
            var e = Assert.Single(page.RootElement.GetProperty("events").EnumerateArray());
            Assert.Equal("want_create", e.GetProperty("type").GetString());
            Assert.Equal("w-1", e.GetProperty("want_create").GetProperty("want_id").GetString());
            Assert.Equal("reviews/date=2024-01-01", e.GetProperty("want_create").GetProperty("partitions")[0].GetProperty("str").GetString());
            Assert.EndsWith("Z", e.GetProperty("timestamp").GetString());
            Assert.False(page.RootElement.GetProperty("has_more").GetBoolean());
        }
    }

    [Fact]
    public async Task A_silo_on_sqlite_serves_health_ready_and_events_and_long_polls()
    {
        var folder = Directory.CreateTempSubdirectory("databuild-silo-").FullName;
        try
        {
            var path = Path.Combine(folder, "nested", "databuild.db");
            await using var silo = SiloProcess.Start($"sqlite:{path}");
            await silo.WaitReadyAsync();
            Assert.Equal(HttpStatusCode.OK, (await silo.Http.GetAsync("/healthz")).StatusCode);
            Assert.True(File.Exists(path), "the SQLite file is created, folders and all");

            using var empty = JsonDocument.Parse(await silo.Http.GetStringAsync("/api/v1/events"));
            Assert.Empty(empty.RootElement.GetProperty("events").EnumerateArray());
            var next = empty.RootElement.GetProperty("next_idx").GetUInt64();

            // A long poll returns as soon as an event commits, well before its wait runs out.
            var poll = silo.Http.GetStringAsync($"/api/v1/events?after={next}&wait_seconds=30");
            await using (var store = DataStore.Open(StoreLocation.Parse($"sqlite:{path}")))
            {
                // The poll must be waiting, so that it is woken rather than finding the event on arrival.
                await silo.WaitForWaitingLongPollAsync();
                await using var tx = await store.BeginAsync();
                await store.Events.AppendAsync(tx, [WantCreate("w-2", "a/b")]);
                await tx.CommitAsync();
            }
            using var woken = JsonDocument.Parse(await poll.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal("w-2", woken.RootElement.GetProperty("events")[0].GetProperty("want_create").GetProperty("want_id").GetString());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_bad_store_argument_exits_with_a_clear_message()
    {
        await using var silo = SiloProcess.Start("mysql:whatever");
        var code = await silo.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, code);
        Assert.Contains("sqlite:<path>", silo.Output);
    }
}
