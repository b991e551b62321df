using System.Data.Common;
using System.Text.Json;
using DataBuild.Runtime.Storage;

namespace DataBuild.Api.JobRuns;

/// <summary>Reads of job runs (and their kept stdout/stderr) from the store.</summary>
public sealed class JobRunQueries(IDataStore store)
{
    private const string Columns = """
        job_run_id, job_label, status, partitions, attempt, sla_deadline, data_timestamp, created_at, started_at, finished_at,
        lease_owner, exit_code, reason, missing_deps, seq
        """;

    public sealed record JobRun(string JobRunId, string JobLabel, string Status, IReadOnlyList<string> Partitions, int Attempt,
        string? SlaDeadline, string DataTimestamp, string CreatedAt, string? StartedAt, string? FinishedAt, string? Silo, int? ExitCode,
        string? Reason, IReadOnlyList<string> MissingDeps);

    public async Task<JobRun?> GetAsync(string id, CancellationToken ct) =>
        (await QueryAsync($"SELECT {Columns} FROM job_runs WHERE job_run_id = $1", ct, id)).Select(r => r.Run).FirstOrDefault();

    public async Task<(IReadOnlyList<JobRun> Runs, long? NextAfter)> ListAsync(string? status, string? label, string? partition, int limit, long after, CancellationToken ct)
    {
        var conditions = new List<string> { "seq > $1" };
        var args = new List<object?> { after };
        if (status is not null) { args.Add(status); conditions.Add($"status = ${args.Count}"); }
        if (label is not null) { args.Add(label); conditions.Add($"job_label = ${args.Count}"); }
        args.Add(limit + 1);
        var rows = await QueryAsync($"SELECT {Columns} FROM job_runs WHERE {string.Join(" AND ", conditions)} ORDER BY seq LIMIT ${args.Count}", ct, [.. args]);
        var filtered = partition is null ? rows : rows.Where(r => r.Run.Partitions.Contains(partition)).ToList();
        var more = rows.Count > limit;
        var page = filtered.Take(limit).ToList();
        return (page.Select(r => r.Run).ToList(), more ? rows[limit - 1].Seq : null);
    }

    public async Task<(string Stdout, string Stderr, string Status)?> LogsAsync(string id, CancellationToken ct)
    {
        await using var connection = await store.OpenConnectionAsync(ct);
        await using var command = Sql.Command(connection, null, "SELECT stdout, stderr, status FROM job_runs WHERE job_run_id = $1", id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) return null;
        return (reader.IsDBNull(0) ? "" : reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1), reader.GetString(2));
    }

    private async Task<List<(JobRun Run, long Seq)>> QueryAsync(string sql, CancellationToken ct, params object?[] args)
    {
        await using var connection = await store.OpenConnectionAsync(ct);
        await using var command = Sql.Command(connection, null, sql, args);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var rows = new List<(JobRun, long)>();
        while (await reader.ReadAsync(ct)) rows.Add((Read(reader), reader.GetInt64(14)));
        return rows;
    }

    private static JobRun Read(DbDataReader r)
    {
        long? L(int i) => r.IsDBNull(i) ? null : r.GetInt64(i);
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        return new JobRun(r.GetString(0), r.GetString(1), r.GetString(2), JsonSerializer.Deserialize<List<string>>(r.GetString(3))!,
            Convert.ToInt32(r.GetValue(4)), ApiJson.Instant(L(5)), ApiJson.Instant(r.GetInt64(6))!, ApiJson.Instant(r.GetInt64(7))!,
            ApiJson.Instant(L(8)), ApiJson.Instant(L(9)), S(10), r.IsDBNull(11) ? null : Convert.ToInt32(r.GetValue(11)), S(12),
            S(13) is { } m ? JsonSerializer.Deserialize<List<string>>(m)! : []);
    }
}
