using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;

namespace DataBuild.Runtime.Cluster;

/// <summary>Heartbeats this silo and hands back the leases of silos that stopped heartbeating.</summary>
internal sealed class MembershipService(GrainRuntime runtime, SiloHostOptions options, string siloId)
{
    public async Task JoinAsync(CancellationToken cancellationToken)
    {
        var now = runtime.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await runtime.Store.Membership.JoinAsync(
            new SiloRecord(siloId, options.Address, Environment.MachineName, now, now, "active"), cancellationToken);
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.HeartbeatInterval, runtime.Clock, stopping);
                var now = runtime.Clock.GetUtcNow().ToUnixTimeMilliseconds();
                if (!await runtime.Store.Membership.HeartbeatAsync(siloId, now, stopping)) runtime.Log.LogRevived(siloId);
                var dead = await runtime.Store.Membership.DeclareDeadAsync(now, (long)options.DeadAfter.TotalMilliseconds, stopping);
                if (dead.Count > 0)
                {
                    runtime.Log.LogSilosDeclaredDead(string.Join(", ", dead));
                    runtime.Store.PublishRemindersChanged();
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
            catch (Exception e) { runtime.Log.LogHeartbeatFailed(e); }
        }
    }
}
