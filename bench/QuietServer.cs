using DataBuild.Testing;
using Npgsql;

namespace DataBuild.Bench;

/// <summary>
/// Before a latency measurement: the server writes out what earlier groups left dirty (a CHECKPOINT), so that a
/// spread checkpoint of the ingest or the scale seeding does not flush pages, and fsync, under the measured commits;
/// and, once the warm-up has filled the fresh database's tables, it gathers their statistics (ANALYZE).
/// </summary>
internal static class QuietServer
{
    public static Task CheckpointAsync(PostgresServer server) => RunAsync(server.AdminConnectionString, "CHECKPOINT");

    /// <summary>
    /// A database a minute old has statistics from when its tables were nearly empty (autovacuum looks once a minute),
    /// and plans made from them keep a table scan while the table grows: the want list by partition, which the chain's
    /// harness polls, scanned every want (0.9 ms a call, about a tenth of PostgreSQL's CPU per hop). The measured silo should run on
    /// the plans a database older than the benchmark would have.
    /// </summary>
    public static Task AnalyzeAsync(string connectionString) => RunAsync(connectionString, "ANALYZE");

    private static async Task RunAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 600 };
        await command.ExecuteNonQueryAsync();
    }
}
