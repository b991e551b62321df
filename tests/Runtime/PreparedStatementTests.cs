using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;
using Npgsql;

namespace DataBuild.Tests.Runtime;

/// <summary>PostgreSQL: the statements every turn repeats stay prepared on the server.</summary>
public sealed class PreparedStatementTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    private const int Runs = 40;

    [Fact]
    public async Task A_statement_whose_argument_is_sometimes_null_stays_prepared()
    {
        var connection = await database.CreateAnotherAsync();
        await using (var migrating = DataStore.Open(StoreLocation.Parse($"postgres:{connection}"))) await migrating.MigrateAsync();
        // Two connections: the store's LISTEN holds one, so every run and the count below share the other's session.
        await using var store = DataStore.Open(StoreLocation.Parse($"postgres:{new NpgsqlConnectionStringBuilder(connection) { MaxPoolSize = 2 }}"));
        await using (var admin = new NpgsqlConnection(connection))
        {
            await admin.OpenAsync();
            await using var listening = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'", admin);
            await Eventually.UntilAsync(async () => Convert.ToInt64(await listening.ExecuteScalarAsync()), n => n > 0, TimeSpan.FromSeconds(30), "the store listens");
        }
        for (var i = 0; i < Runs; i++)
        {
            await using var tx = await store.BeginTurnAsync();
            // As a partition's read model: available_at and the reason are null until it is built.
            tx.Defer("""
                INSERT INTO partitions (partition_ref, status, updated_at, available_at, job_run_id, reason, waiting_wants)
                VALUES ($1, $2, $3, $4, $5, $6, 0)
                """, $"p/{i}", "missing", 1L, Sql.Arg(i % 2 == 0 ? null : 5L), Sql.Arg(i % 2 == 0 ? null : "run"), Sql.Arg((string?)null));
            await tx.CommitAsync();
        }

        // Npgsql runs an auto-prepared statement unprepared, parsed and planned again, whenever an argument's type
        // differs from the one it was prepared with; an untyped null differed from every type, so every other run
        // here was planned again (half the runs, and most of them in the benchmarks' mixed traffic).
        await using var session = await store.OpenConnectionAsync();
        await using var count = session.CreateCommand();
        count.CommandText = "SELECT COALESCE(SUM(generic_plans + custom_plans), 0) FROM pg_prepared_statements WHERE statement LIKE '%INSERT INTO partitions%'";
        var preparedRuns = Convert.ToInt64(await count.ExecuteScalarAsync());
        // Npgsql prepares a statement on its fifth use: the runs before that are unprepared either way. With untyped
        // nulls, 18 of the 40 runs used it.
        Assert.True(preparedRuns >= Runs * 3 / 4, $"{preparedRuns} of {Runs} runs used the prepared statement");
    }
}
