using System.Threading.Channels;
using DataBuild.Runtime.EventLog;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace DataBuild.Runtime.Storage.Postgres;

/// <summary>
/// Cross-silo wake-ups over LISTEN/NOTIFY. A notification is only a hint that something committed; every
/// reader re-reads the database, so a lost notification costs latency (until the reader's safety-net
/// timeout), never correctness. NOTIFY is sent after commit from its own connection and coalesced, because
/// a NOTIFY inside a transaction serialises commits on PostgreSQL's notification queue lock.
/// </summary>
internal sealed class PostgresNotifications : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly Dictionary<string, ChangeSignal> _signals;
    private readonly Dictionary<string, Channel<bool>> _pending;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    // Sent as every NOTIFY's payload, so that this store's own notifications, which Publish has already
    // signalled locally, do not wake its readers a second time when PostgreSQL echoes them back.
    private readonly string _origin = Guid.NewGuid().ToString("N");

    public PostgresNotifications(NpgsqlDataSource dataSource, ILogger logger, IEnumerable<string> channels)
    {
        _dataSource = dataSource;
        _logger = logger;
        _signals = channels.ToDictionary(c => c, _ => new ChangeSignal());
        _pending = _signals.Keys.ToDictionary(c => c, _ => Channel.CreateBounded<bool>(
            new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true }));
        _loops.Add(Task.Run(ListenLoopAsync));
        foreach (var channel in _signals.Keys) _loops.Add(Task.Run(() => NotifyLoopAsync(channel)));
    }

    public ChangeSignal Signal(string channel) => _signals[channel];

    /// <summary>Wakes this silo at once and the others as soon as a NOTIFY can be sent.</summary>
    public void Publish(string channel)
    {
        _signals[channel].Pulse();
        _pending[channel].Writer.TryWrite(true);
    }

    private async Task NotifyLoopAsync(string channel)
    {
        var reader = _pending[channel].Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token))
            {
                reader.TryRead(out _);
                try
                {
                    await using var command = _dataSource.CreateCommand($"SELECT pg_notify('{channel}', '{_origin}')");
                    await command.ExecuteNonQueryAsync(_stop.Token);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _logger.LogWarning(e, "Could not send NOTIFY on {Channel}; other silos will catch up on their next sweep", channel);
                    await Task.Delay(TimeSpan.FromMilliseconds(500), _stop.Token);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
    }

    private async Task ListenLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(_stop.Token);
                connection.Notification += (_, args) =>
                {
                    if (args.Payload != _origin && _signals.TryGetValue(args.Channel, out var signal)) signal.Pulse();
                };
                foreach (var channel in _signals.Keys)
                {
                    await using var listen = new NpgsqlCommand($"LISTEN {channel}", connection);
                    await listen.ExecuteNonQueryAsync(_stop.Token);
                }
                // Anything may have committed while we were not listening.
                foreach (var signal in _signals.Values) signal.Pulse();
                while (!_stop.IsCancellationRequested) await connection.WaitAsync(_stop.Token);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
            catch (Exception e)
            {
                _logger.LogWarning(e, "LISTEN connection lost; reconnecting");
                try { await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token); }
                catch (OperationCanceledException) { }
            }
        }
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _stop.Cancel();
        try { await Task.WhenAll(_loops); }
        catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
