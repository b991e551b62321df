using System.Net.Http.Json;
using System.Text.Json;
using DataBuild.Tests.Infrastructure;

namespace DataBuild.Tests.Reconciliation;

/// <summary>
/// Which messages' turns run ahead of their sender's commit, to commit in the sender's group (CommitJoin), on a silo
/// process so that its metrics are its own. (What such a turn may not do: GrainHostConformance's grain-call test.)
/// </summary>
public sealed class JoinedDeliveryTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-joined-").FullName;

    [Fact]
    public async Task A_want_told_its_partition_failed_reads_the_committed_reason_and_hears_after_the_partitions_commit()
    {
        await using var silo = SiloProcess.Start($"postgres:{await database.CreateAnotherAsync()}", null, "--graph", JobTestGraph.Write(_folder));
        await silo.WaitReadyAsync();
        var want = await silo.UntilWantAsync(await silo.CreateWantAsync("broken/joined"),
            w => w.GetProperty("status").GetString() == "failed", TimeSpan.FromSeconds(60), "the want to fail");

        // The want reads the partition's reason from the database, after the partition's commit.
        var reason = want.GetProperty("reason").GetString()!;
        // Read before the commit, it would be the reason of the first of the two attempts ("attempt 1 of 2 failed ...").
        Assert.Contains("partition broken/joined failed: job 'broken' failed 2 times; last: exited with code 2", reason);
        var metrics = (await silo.Http.GetStringAsync("/metrics")).Split('\n');
        // A want hears of its partitions after their commits, never in them: none of its turns started ahead and was refused.
        Assert.DoesNotContain(metrics, l => l.StartsWith("databuild_grain_turns_total{grain_type=\"want\",outcome=\"declined\"} ", StringComparison.Ordinal));
        Assert.DoesNotContain(metrics, l => l.StartsWith("databuild_reminder_deliveries_total{outcome=\"failed\"}", StringComparison.Ordinal));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
