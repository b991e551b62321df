using DataBuild.GrainInterfaces;
using DataBuild.Grains.Jobs;
using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Reconciliation;

/// <summary>A run's outcome is recorded only on the claim that ran it, against every store.</summary>
public abstract class JobRunCompletionConformance
{
    protected abstract Task<IDataStore> FreshStoreAsync();

    [Fact]
    public async Task An_outcome_on_a_superseded_claim_records_nothing_and_the_current_claim_records_it()
    {
        await using var store = await FreshStoreAsync();
        await store.MigrateAsync();
        var queue = new JobRunQueue(store);
        await using (var setup = await store.BeginTurnAsync())
        {
            // Claimed twice: version 2 is the current claim, version 1 an earlier silo's whose lease ran out.
            setup.Defer("""
                INSERT INTO job_runs (job_run_id, job_label, status, partitions, ref_count, data_timestamp, attempt, created_at,
                                      started_at, lease_owner, lease_until, version)
                VALUES ('run-1', 'leaf', 'running', '["leaf/a"]', 1, 0, 2, 0, 0, 'silo-b', 60000, 2)
                """);
            await setup.CommitAsync();
        }
        var stale = (await queue.GetAsync("run-1", CancellationToken.None))! with { Version = 1 };

        async Task CompleteAsync(JobRunRow run, string status)
        {
            await using var tx = await store.BeginTurnAsync();
            JobRunQueue.Complete(tx, run, status, 1000, 42, 0, null, [], "out", "");
            store.Events.AppendDeferred(tx, [EventLog.SampleEvents.JobRunSucceeded(run.JobRunId, "leaf", "leaf/a")]);
            await tx.CommitAsync();
        }

        await Assert.ThrowsAsync<StaleJobRunClaimException>(() => CompleteAsync(stale, JobRunStatus.Failed));
        Assert.Equal(JobRunStatus.Running, (await queue.GetAsync("run-1", CancellationToken.None))!.Status);
        Assert.Empty((await store.Events.ListAsync(new Protos.EventFilter())).Events);

        await CompleteAsync(stale with { Version = 2 }, JobRunStatus.Succeeded);
        Assert.Equal(JobRunStatus.Succeeded, (await queue.GetAsync("run-1", CancellationToken.None))!.Status);
        Assert.Single((await store.Events.ListAsync(new Protos.EventFilter())).Events);
    }
}

public sealed class SqliteJobRunCompletionTests : JobRunCompletionConformance, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-completion-").FullName;
    protected override Task<IDataStore> FreshStoreAsync() =>
        Task.FromResult(DataStore.Open(StoreLocation.Parse($"sqlite:{Path.Combine(_folder, "databuild.db")}")));
    public void Dispose() => Directory.Delete(_folder, recursive: true);
}

public sealed class PostgresJobRunCompletionTests(PostgresDatabase database) : JobRunCompletionConformance, IClassFixture<PostgresDatabase>
{
    protected override async Task<IDataStore> FreshStoreAsync() =>
        DataStore.Open(StoreLocation.Parse($"postgres:{await database.CreateAnotherAsync()}"));
}
