using DataBuild.Runtime.Hosting;
using Npgsql;

namespace DataBuild.Runtime.Storage.Postgres;

/// <summary>
/// Reads of grain states outside any transaction (an activation's first read), sent together: the reads asked for
/// while earlier ones are on their way go as the next batch, one statement per grain type (<c>grain_key = ANY($2)</c>,
/// a scan of the primary key). No timer: a read asked for when fewer than <see cref="MaxInFlight"/> batches are out
/// goes at once. Under ingest each new want activates its partition, so one statement and one pooled connection
/// serve many activations instead of one each.
/// </summary>
public sealed class GrainStateReads
{
    /// <summary>Batches on their way at once, as for group commit: one executed while the next is sent.</summary>
    private const int MaxInFlight = 2;

    // Far below what a statement's array can hold; a batch larger than this waits for the next.
    private const int MaxPerBatch = 1_000;

    private const string Many = "SELECT grain_key, version, payload FROM grain_state WHERE grain_type = $1 AND grain_key = ANY($2)";

    private readonly NpgsqlDataSource _dataSource;
    private readonly InFlightBatches<Pending> _batches;

    public GrainStateReads(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _batches = new(MaxInFlight, Take, SendAsync, static (pending, e) => pending.Result.TrySetException(e));
    }

    internal Task<StoredState?> ReadAsync(GrainId id, CancellationToken cancellationToken)
    {
        var pending = new Pending(id);
        _batches.Enqueue(pending);
        return pending.Result.Task.WaitAsync(cancellationToken);
    }

    private static List<Pending> Take(Queue<Pending> queue)
    {
        var batch = new List<Pending>(Math.Min(queue.Count, MaxPerBatch));
        while (batch.Count < MaxPerBatch && queue.TryDequeue(out var next)) batch.Add(next);
        return batch;
    }

    private async Task SendAsync(List<Pending> batch)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        if (batch.Count == 1)
        {
            var id = batch[0].Id;
            await using var command = new NpgsqlCommand(GrainStateTable.SelectOne, connection) { Parameters = { new() { Value = id.Type }, new() { Value = id.Key } } };
            await using var reader = await command.ExecuteReaderAsync();
            batch[0].Result.TrySetResult(await reader.ReadAsync() ? GrainStateTable.StateAt(reader, 0) : null);
            return;
        }
        var byType = batch.GroupBy(p => p.Id.Type).ToList();
        await using var statements = new NpgsqlBatch(connection);
        foreach (var type in byType)
            statements.BatchCommands.Add(new NpgsqlBatchCommand(Many)
            {
                Parameters = { new() { Value = type.Key }, new() { Value = type.Select(p => p.Id.Key).Distinct().ToArray() } },
            });
        var found = new Dictionary<GrainId, StoredState>();
        await using (var reader = await statements.ExecuteReaderAsync())
        {
            foreach (var type in byType)
            {
                while (await reader.ReadAsync()) found[new GrainId(type.Key, reader.GetString(0))] = GrainStateTable.StateAt(reader, 1);
                await reader.NextResultAsync();
            }
        }
        foreach (var pending in batch) pending.Result.TrySetResult(found.GetValueOrDefault(pending.Id));
    }

    private sealed class Pending(GrainId id)
    {
        public GrainId Id { get; } = id;
        public TaskCompletionSource<StoredState?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
