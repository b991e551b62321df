using DataBuild.Protos;
using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;
using Npgsql;
using static DataBuild.Tests.EventLog.SampleEvents;

namespace DataBuild.Tests.EventLog;

public sealed class PostgresEventLogTests(PostgresDatabase database) : EventLogConformance, IClassFixture<PostgresDatabase>
{
    // Each test gets an empty database: the class fixture's server, a new database per test.
    protected override async Task<IDataStore> OpenFreshStoreAsync() =>
        DataStore.Open(StoreLocation.Parse($"postgres:{await database.CreateAnotherAsync()}"));

    /// <summary>
    /// The gap problem: T1 takes its index first but commits last. A follower that had read T2's event and
    /// moved its cursor past it would skip T1's for ever. The log must hold T2's event back until T1 ends.
    /// </summary>
    [Fact]
    public async Task A_later_numbered_commit_is_not_visible_before_an_earlier_open_transaction_ends()
    {
        await using var early = await Store.BeginAsync();
        await Store.Events.AppendAsync(early, [WantCreate("early", "a/1")]);

        await using (var late = await Store.BeginAsync())
        {
            await Store.Events.AppendAsync(late, [WantCreate("late", "a/2")]);
            await late.CommitAsync();
        }

        var whileOpen = await Store.Events.ListAsync(new EventFilter());
        Assert.Empty(whileOpen.Events);

        await early.CommitAsync();
        var after = await Store.Events.ListAsync(new EventFilter { SinceIdx = whileOpen.NextIdx });
        Assert.Equal(["early", "late"], after.Events.Select(e => e.WantCreate.WantId));
    }

    [Fact]
    public async Task An_open_transaction_that_rolls_back_releases_the_events_behind_it()
    {
        var early = await Store.BeginAsync();
        await Store.Events.AppendAsync(early, [WantCreate("doomed", "a/1")]);
        await using (var late = await Store.BeginAsync())
        {
            await Store.Events.AppendAsync(late, [WantCreate("late", "a/2")]);
            await late.CommitAsync();
        }
        Assert.Empty((await Store.Events.ListAsync(new EventFilter())).Events);
        await early.DisposeAsync();
        Assert.Equal(["late"], (await Store.Events.ListAsync(new EventFilter())).Events.Select(e => e.WantCreate.WantId));
    }

    [Fact]
    public async Task Four_sessions_migrating_one_empty_database_at_once_all_succeed()
    {
        var connectionString = await database.CreateAnotherAsync();
        var stores = Enumerable.Range(0, 4).Select(_ => DataStore.Open(StoreLocation.Parse($"postgres:{connectionString}"))).ToList();
        try
        {
            await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync())));
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT count(*), count(DISTINCT version) FROM schema_migrations", connection);
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            Assert.Equal(reader.GetInt64(1), reader.GetInt64(0));
            Assert.True(reader.GetInt64(0) >= 1);
        }
        finally
        {
            foreach (var s in stores) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task Indexes_stay_above_restored_events_when_transaction_ids_restart_lower()
    {
        // Simulate a restore into a fresh cluster: events numbered from far higher transaction ids.
        var top = (long)(await Store.Events.ListAsync(new EventFilter())).NextIdx;
        await AppendAsync(WantCreate("before", "a/1"));
        var restoredIndex = ((long)1 << 40) + 7;
        await using (var connection = new NpgsqlConnection(((NpgsqlConnectionStringBuilder)new(Store.Location.Target)).ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("UPDATE bel_events SET idx = $1", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = restoredIndex });
            await command.ExecuteNonQueryAsync();
        }
        await Store.MigrateAsync(); // start-up notices and fences
        await AppendAsync(WantCreate("after", "a/2"));
        var page = await Store.Events.ListAsync(new EventFilter { SinceIdx = (ulong)top });
        Assert.Equal(["before", "after"], page.Events.Select(e => e.WantCreate.WantId));
        Assert.True(page.Events[1].Index > (ulong)restoredIndex);
    }
}
