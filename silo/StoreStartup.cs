using DataBuild.Runtime.Storage;

namespace DataBuild.Silo;

public static class StoreStartup
{
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Creates or upgrades the schema. A database that is still starting (common on Kubernetes, where the silo
    /// and PostgreSQL start together) is retried with backoff for a minute before the silo gives up.
    /// </summary>
    public static async Task MigrateAsync(IDataStore store, ILogger log, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + GiveUpAfter;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                await store.MigrateAsync(cancellationToken);
                return;
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException { IsTransient: true } or System.Net.Sockets.SocketException
                                      && DateTime.UtcNow + delay < deadline)
            {
                log.LogWarning("Store {Store} not reachable yet ({Message}); retrying in {Delay}", store.Location, e.Message, delay);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }
}
