using DataBuild.Runtime.Cluster;
using DataBuild.Runtime.Reminders;
using DataBuild.Runtime.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DataBuild.Runtime.Hosting;

public sealed record SiloHostOptions
{
    /// <summary>Unique per silo process; defaults to host name + a random suffix.</summary>
    public string SiloId { get; init; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";
    public string Address { get; init; } = "";
    /// <summary>Activations unused this long are deactivated (Orleans' default: 15 minutes).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(15);
    public TimeSpan CollectionInterval { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>How long a claimed reminder is this silo's before any other silo may claim it again.</summary>
    public TimeSpan ReminderLease { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The longest the reminder loop sleeps without a notification (a lost NOTIFY costs at most this).</summary>
    public TimeSpan ReminderSafetyNet { get; init; } = TimeSpan.FromSeconds(10);
    public int MaxConcurrentReminderDeliveries { get; init; } = 256;
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>A silo silent this long is declared dead and its leases handed back.</summary>
    public TimeSpan DeadAfter { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A silo's grain host: activations, reminders and membership on one store. Several may share a PostgreSQL
/// database (in one process or many); a SQLite store takes one.
/// </summary>
public sealed class SiloHost : IAsyncDisposable
{
    private readonly GrainRuntime _runtime;
    private readonly SiloHostOptions _options;
    private readonly ReminderService _reminders;
    private readonly MembershipService _membership;
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _killed = new();
    private readonly List<Task> _loops = [];
    private int _state; // 0 new, 1 started, 2 stopped

    public SiloHost(IDataStore store, GrainTypeRegistry types, IServiceProvider services, SiloHostOptions? options = null,
        TimeProvider? clock = null, ILoggerFactory? loggers = null)
    {
        _options = options ?? new SiloHostOptions();
        var log = (loggers ?? NullLoggerFactory.Instance).CreateLogger("DataBuild.Runtime");
        _runtime = new GrainRuntime(store, types, services, clock ?? TimeProvider.System, log) { Killed = _killed.Token };
        _reminders = new ReminderService(_runtime, _options, _options.SiloId);
        _runtime.Reminders = _reminders;
        _membership = new MembershipService(_runtime, _options, _options.SiloId);
    }

    public string SiloId => _options.SiloId;
    public IGrainFactory GrainFactory => _runtime;
    public IDetachedTurns DetachedTurns => _runtime;
    internal ReminderService Reminders => _reminders;
    public IDataStore Store => _runtime.Store;
    public int ActivationCount => _runtime.Catalog.Count;

    /// <summary>
    /// Sends <paramref name="target"/> the durable message <paramref name="name"/> (a one-shot reminder due now)
    /// with <paramref name="transaction"/>: delivered on this silo straight after the commit when a delivery slot
    /// is free, otherwise by whichever silo's reminder loop claims it first.
    /// </summary>
    public void SendMessage(StoreTransaction transaction, GrainId target, string name) =>
        _reminders.Schedule(transaction, target, name, _runtime.Clock.GetUtcNow().ToUnixTimeMilliseconds(), 0);

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) throw new InvalidOperationException("A silo starts once.");
        await _membership.JoinAsync(cancellationToken);
        _loops.Add(Task.Run(() => _reminders.RunAsync(_stopping.Token)));
        _loops.Add(Task.Run(() => _membership.RunAsync(_stopping.Token)));
        _loops.Add(Task.Run(CollectLoopAsync));
    }

    /// <summary>True when the grain is active here and takes its row lock at every turn (after a conflict with another silo).</summary>
    internal bool LocksEachTurn(GrainId id) => _runtime.Catalog.LocksEachTurn(id);

    /// <summary>Deactivates activations idle longer than the idle timeout now (the collector does this periodically).</summary>
    public Task<int> CollectIdleAsync(TimeSpan? idleFor = null) => _runtime.Catalog.CollectAsync(idleFor ?? _options.IdleTimeout, _stopping.Token);

    private async Task CollectLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.CollectionInterval, _runtime.Clock, _stopping.Token);
                await CollectIdleAsync();
            }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>A clean stop: deliveries in flight finish, activations deactivate, leases are handed back.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _state, 2) != 1) return;
        _stopping.Cancel();
        await Task.WhenAll(_loops);
        await _reminders.DrainAsync();
        await _runtime.Catalog.CollectAsync(null, CancellationToken.None);
        await _runtime.Store.Membership.LeaveAsync(SiloId);
    }

    /// <summary>
    /// A crash, as far as the cluster can tell: every loop stops at once, in-flight transactions are abandoned
    /// (rolled back by the database), leases are left to expire or to be reclaimed by the survivors.
    /// </summary>
    public async Task KillAsync()
    {
        if (Interlocked.Exchange(ref _state, 2) != 1) return;
        _killed.Cancel();
        _stopping.Cancel();
        _reminders.Close();
        try { await Task.WhenAll(_loops); } catch (OperationCanceledException) { }
        // Deliveries in flight are not awaited: a crashed process does not finish them. Each fails at its
        // next database operation and commits nothing.
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stopping.Dispose();
        _killed.Dispose();
    }
}
