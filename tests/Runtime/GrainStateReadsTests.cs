using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Testing;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Runtime;

/// <summary>
/// PostgreSQL: activations that read their grains' states at the same moment share statements (GrainStateReads); each
/// must still get exactly its own grain's state, or none, and a read that cannot be made must fail, not hang.
/// </summary>
public sealed class GrainStateReadsTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Grains_read_at_once_each_get_their_own_stored_state_and_unstored_grains_get_none()
    {
        await using var store = DataStore.Open(StoreLocation.Parse($"postgres:{database.ConnectionString}"));
        await store.MigrateAsync();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        // Two grain types with the same keys, some stored, written twice over so their versions differ.
        GrainId Grain(int i) => new(i % 2 == 0 ? "want" : "partition", $"k{i / 2}");
        var stored = Enumerable.Range(0, 60).Where(i => i % 3 != 0).ToList();
        foreach (var i in stored)
        {
            await using var tx = await store.BeginTurnAsync();
            GrainStateTable.Write(tx, Grain(i), 0, [(byte)i], now);
            await tx.CommitAsync();
            if (i % 5 != 0) continue;
            await using var again = await store.BeginTurnAsync();
            GrainStateTable.Write(again, Grain(i), 1, [(byte)i, 2], now);
            await again.CommitAsync();
        }

        // Every grain asked for three times at once, in an order that mixes types and stored and unstored grains.
        var asks = Enumerable.Range(0, 60).SelectMany(i => new[] { i, i, i }).OrderBy(i => (i * 37) % 61).ToList();
        var reads = await Task.WhenAll(asks.Select(i => Task.Run(() => store.GrainStates.ReadAsync(null, Grain(i), forUpdate: false))));

        for (var at = 0; at < asks.Count; at++)
        {
            var i = asks[at];
            if (!stored.Contains(i))
            {
                Assert.Null(reads[at]);
                continue;
            }
            var state = Assert.IsType<StoredState>(reads[at]);
            Assert.Equal(i % 5 == 0 ? 2 : 1, state.Version);
            Assert.Equal(i % 5 == 0 ? [(byte)i, 2] : new[] { (byte)i }, state.Payload);
        }
    }

    [Fact]
    public async Task Reads_from_a_database_that_cannot_be_reached_all_fail_and_the_next_read_is_tried_again()
    {
        var unreachable = $"postgres:Host=127.0.0.1;Port={PostgresServer.FreePort()};Username=postgres;Timeout=2";
        await using var store = DataStore.Open(StoreLocation.Parse(unreachable));
        var reads = Enumerable.Range(0, 20).Select(i => Task.Run(() => store.GrainStates.ReadAsync(null, new GrainId("want", $"k{i}"), forUpdate: false))).ToList();
        foreach (var read in reads)
            await Assert.ThrowsAsync<Npgsql.NpgsqlException>(() => read.WaitAsync(TimeSpan.FromSeconds(30)));
        await Assert.ThrowsAsync<Npgsql.NpgsqlException>(() =>
            store.GrainStates.ReadAsync(null, new GrainId("want", "later"), forUpdate: false).WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
