using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;
using Npgsql;

namespace DataBuild.Tests.Runtime;

/// <summary>
/// PostgreSQL: a want waiting quietly on a partition no job builds, and that partition becoming available, at the same
/// moment on two connections. Without the partition's lock, each transaction would miss the other's uncommitted write
/// (the partition's search for waiters, the want's check of the status) and the want would wait until its TTL.
/// </summary>
public sealed class QuietWaitsLockTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private string _connection = "";

    public async Task InitializeAsync()
    {
        _connection = await database.CreateAnotherAsync();
        await using var store = DataStore.Open(StoreLocation.Parse($"postgres:{_connection}"));
        await store.MigrateAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_want_checking_a_partition_that_is_becoming_available_sends_its_message_instead_of_waiting_quietly()
    {
        // The partition has searched for waiters and holds its lock; its row is written later in its commit (a group
        // commit sends merged row writes at the end of its batch).
        await using var partition = await BeginAsync();
        await ExecuteAsync(partition, "SELECT databuild_tell_quiet_waiters('ext/x', 'available:ext/x', 1, '{}')");

        // The want's commit does not wait for the partition's: it sends the partition its message.
        await using (var want = await BeginAsync())
        {
            await WantRowsAsync(want, "w1", "ext/x");
            await ExecuteAsync(want, "SELECT databuild_wait_quietly(ARRAY['ext/x'], ARRAY['waiting:w1'], ARRAY[1::bigint])");
            await ExecuteAsync(want, "COMMIT");
        }
        await ExecuteAsync(partition, "COMMIT");
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'partition' AND grain_key = 'ext/x' AND name = 'waiting:w1'"));
    }

    [Fact]
    public async Task A_partition_becoming_available_while_a_quiet_want_is_uncommitted_waits_for_it_and_tells_it()
    {
        await using var want = await BeginAsync();
        await WantRowsAsync(want, "w2", "ext/y");
        await ExecuteAsync(want, "SELECT databuild_wait_quietly(ARRAY['ext/y'], ARRAY['waiting:w2'], ARRAY[1::bigint])");

        await using var partition = await BeginAsync();
        var telling = ExecuteAsync(partition, "SELECT databuild_tell_quiet_waiters('ext/y', 'available:ext/y', 2, '{}')");
        await UntilWaitingOnALockAsync(partition, "the partition to wait for the want's lock");
        Assert.False(telling.IsCompleted);

        await ExecuteAsync(want, "COMMIT");
        await telling.WaitAsync(Deadline);
        await ExecuteAsync(partition, "COMMIT");
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'want' AND grain_key = 'w2' AND name = 'available:ext/y'"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'partition'"));
    }

    [Fact]
    public async Task A_want_of_a_partition_that_became_available_sends_its_message_and_a_want_of_one_without_a_row_waits_quietly()
    {
        await using (var partition = await BeginAsync())
        {
            await ExecuteAsync(partition, "SELECT databuild_tell_quiet_waiters('ext/w', 'available:ext/w', 1, '{}')");
            await ExecuteAsync(partition, "INSERT INTO partitions (partition_ref, status, updated_at, waiting_wants) VALUES ('ext/w', 'available', 1, 0)");
            await ExecuteAsync(partition, "COMMIT");
        }
        await using (var want = await BeginAsync())
        {
            await WantRowsAsync(want, "w3", "ext/w");
            await ExecuteAsync(want, "INSERT INTO want_partitions (partition_ref, want_id) VALUES ('ext/never-named', 'w3')");
            await ExecuteAsync(want, "SELECT databuild_wait_quietly(ARRAY['ext/w', 'ext/never-named'], ARRAY['waiting:w3', 'waiting:w3'], ARRAY[1::bigint, 1])");
            await ExecuteAsync(want, "COMMIT");
        }
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'partition' AND grain_key = 'ext/w' AND name = 'waiting:w3'"));
        // A partition without a row is missing: the want waits quietly, and the partition is given no row.
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'partition' AND grain_key = 'ext/never-named'"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM partitions WHERE partition_ref = 'ext/never-named'"));
    }

    [Fact]
    public async Task Regression_a_want_in_the_same_group_commit_as_its_partitions_move_to_available_is_not_missed()
    {
        // A group commit is one transaction: the partition's lock is the want's own, and the partition searched for
        // waiters before the want's rows and its own row were written (merged writes go at the end of the batch).
        await using (var group = await BeginAsync())
        {
            await ExecuteAsync(group, "SELECT databuild_tell_quiet_waiters('ext/g', 'available:ext/g', 1, '{}')");
            await WantRowsAsync(group, "w4", "ext/g");
            await ExecuteAsync(group, "SELECT databuild_wait_quietly(ARRAY['ext/g', 'ext/other'], ARRAY['waiting:w4', 'waiting:w4'], ARRAY[1::bigint, 1])");
            await ExecuteAsync(group, "COMMIT");
        }
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'partition' AND grain_key = 'ext/g' AND name = 'waiting:w4'"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'partition' AND grain_key = 'ext/other'"));
    }

    [Fact]
    public async Task A_partition_tells_neither_the_wants_it_told_itself_nor_wants_that_ended()
    {
        await using (var wants = await BeginAsync())
        {
            await WantRowsAsync(wants, "told", "ext/z");
            await WantRowsAsync(wants, "ended", "ext/z", status: "cancelled");
            await WantRowsAsync(wants, "quiet", "ext/z");
            await ExecuteAsync(wants, "COMMIT");
        }
        await using (var partition = await BeginAsync())
        {
            await ExecuteAsync(partition, "SELECT databuild_tell_quiet_waiters('ext/z', 'available:ext/z', 3, ARRAY['told'])");
            await ExecuteAsync(partition, "COMMIT");
        }
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'want'"));
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'want' AND grain_key = 'quiet'"));
    }

    private async Task<NpgsqlConnection> BeginAsync()
    {
        var connection = new NpgsqlConnection(_connection);
        await connection.OpenAsync();
        await ExecuteAsync(connection, "BEGIN");
        return connection;
    }

    /// <summary>Until <paramref name="connection"/>'s statement waits for a lock (a row's or an advisory one).</summary>
    private Task UntilWaitingOnALockAsync(NpgsqlConnection connection, string what) =>
        Eventually.UntilAsync(() => CountAsync($"SELECT count(*) FROM pg_stat_activity WHERE pid = {connection.ProcessID} AND wait_event_type = 'Lock'"),
            n => n == 1, Deadline, what);

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The rows a want's commit writes that the partition's search reads: its read-model row and its partition.</summary>
    private static Task WantRowsAsync(NpgsqlConnection connection, string wantId, string partition, string status = "idle") =>
        ExecuteAsync(connection, $"""
            INSERT INTO wants (want_id, status, partitions, data_timestamp, ttl_seconds, ttl_deadline, source_type, source_name,
                               root_want_id, sla_violated, created_at)
            VALUES ('{wantId}', '{status}', '["{partition}"]', 0, 60, 60000, 'api', '', '{wantId}', false, 0);
            INSERT INTO want_partitions (partition_ref, want_id) VALUES ('{partition}', '{wantId}');
            """);

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connection);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }
}
