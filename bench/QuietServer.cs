using DataBuild.Testing;
using Npgsql;

namespace DataBuild.Bench;

/// <summary>
/// Before a latency measurement: the server writes out what earlier groups left dirty (a CHECKPOINT), so that a
/// spread checkpoint of the ingest or the scale seeding does not flush pages, and fsync, under the measured commits.
/// </summary>
internal static class QuietServer
{
    public static async Task CheckpointAsync(PostgresServer server)
    {
        await using var connection = new NpgsqlConnection(server.AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("CHECKPOINT", connection) { CommandTimeout = 600 };
        await command.ExecuteNonQueryAsync();
    }
}
