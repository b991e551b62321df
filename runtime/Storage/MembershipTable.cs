namespace DataBuild.Runtime.Storage;

public sealed record SiloRecord(string SiloId, string Address, string HostName, long StartedAt, long HeartbeatAt, string Status);

/// <summary>
/// Silos and their heartbeats. Used to show the cluster and to hand a dead silo's leases back early;
/// nothing correct depends on it (leases expire by themselves and writes are fenced by versions).
/// </summary>
public sealed class MembershipTable(IDataStore store)
{
    public async Task JoinAsync(SiloRecord silo, CancellationToken cancellationToken = default)
    {
        await using var transaction = await store.BeginAsync(cancellationToken);
        await using (var command = transaction.Command("""
            INSERT INTO silos (silo_id, address, host_name, started_at, heartbeat_at, status) VALUES ($1, $2, $3, $4, $5, 'active')
            ON CONFLICT (silo_id) DO UPDATE SET address = excluded.address, heartbeat_at = excluded.heartbeat_at, status = 'active'
            """, silo.SiloId, silo.Address, silo.HostName, silo.StartedAt, silo.HeartbeatAt))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Records a heartbeat. False if another silo had declared this one dead (it is active again now).</summary>
    public async Task<bool> HeartbeatAsync(string siloId, long nowMs, CancellationToken cancellationToken = default)
    {
        await using var transaction = await store.BeginAsync(cancellationToken);
        string? previous;
        await using (var read = transaction.Command("SELECT status FROM silos WHERE silo_id = $1", siloId))
        {
            previous = await read.ExecuteScalarAsync(cancellationToken) as string;
        }
        await using (var command = transaction.Command("UPDATE silos SET heartbeat_at = $2, status = 'active' WHERE silo_id = $1", siloId, nowMs))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return previous == "active";
    }

    /// <summary>
    /// Declares silos whose last heartbeat is older than <paramref name="deadAfterMs"/> dead and releases their
    /// leases in the same transaction, so their reminders are claimable at once. Returns their ids.
    /// </summary>
    public async Task<IReadOnlyList<string>> DeclareDeadAsync(long nowMs, long deadAfterMs, CancellationToken cancellationToken = default)
    {
        await using var transaction = await store.BeginAsync(cancellationToken);
        var dead = new List<string>();
        await using (var command = transaction.Command(
            "UPDATE silos SET status = 'dead' WHERE status = 'active' AND heartbeat_at < $1 RETURNING silo_id", nowMs - deadAfterMs))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) dead.Add(reader.GetString(0));
        }
        foreach (var silo in dead) await ReleaseLeasesAsync(transaction, silo, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return dead;
    }

    /// <summary>A clean stop: the silo's leases are handed back and it is shown as stopped.</summary>
    public async Task LeaveAsync(string siloId, CancellationToken cancellationToken = default)
    {
        await using var transaction = await store.BeginAsync(cancellationToken);
        await using (var command = transaction.Command("UPDATE silos SET status = 'stopped' WHERE silo_id = $1", siloId))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await ReleaseLeasesAsync(transaction, siloId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<SiloRecord>> ListAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await store.OpenConnectionAsync(cancellationToken);
        await using var command = Sql.Command(connection, null,
            "SELECT silo_id, address, host_name, started_at, heartbeat_at, status FROM silos ORDER BY started_at");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<SiloRecord>();
        while (await reader.ReadAsync(cancellationToken))
            list.Add(new SiloRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetString(5)));
        return list;
    }

    private static async Task ReleaseLeasesAsync(StoreTransaction transaction, string siloId, CancellationToken cancellationToken)
    {
        await using var command = transaction.Command(
            "UPDATE reminders SET lease_owner = NULL, lease_until = NULL, version = version + 1 WHERE lease_owner = $1", siloId);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
