namespace DataBuild.Runtime.Storage.Postgres;

/// <summary>
/// Requests that queue while earlier batches are on their way go together as the next batch, with at most
/// <c>maxInFlight</c> batches out at once, and no timer: a request made when fewer are out goes at once. Group commit
/// and the batched state reads send this way.
/// </summary>
/// <param name="take">Takes the next batch off the queue (never empty), under the lock.</param>
/// <param name="send">Sends a batch and answers each of its requests.</param>
/// <param name="fail">Fails a request of a batch whose <paramref name="send"/> threw.</param>
internal sealed class InFlightBatches<T>(int maxInFlight, Func<Queue<T>, List<T>> take, Func<List<T>, Task> send, Action<T, Exception> fail)
{
    private readonly Lock _gate = new();
    private readonly Queue<T> _queue = new();
    private int _inFlight;

    /// <summary>Queues <paramref name="requests"/>, one right behind the other, so that they normally share a batch.</summary>
    public void Enqueue(params ReadOnlySpan<T> requests)
    {
        bool start;
        lock (_gate)
        {
            foreach (var request in requests) _queue.Enqueue(request);
            start = _inFlight < maxInFlight;
            if (start) _inFlight++;
        }
        // The sender answers every request it takes, whatever happens; nothing queued is left behind, because a sender
        // only stops once it has found the queue empty under the lock.
        if (start) _ = Task.Run(SendWhileQueuedAsync, CancellationToken.None);
    }

    private async Task SendWhileQueuedAsync()
    {
        while (true)
        {
            List<T> batch;
            lock (_gate)
            {
                if (_queue.Count == 0)
                {
                    _inFlight--;
                    return;
                }
                batch = take(_queue);
            }
            try
            {
                await send(batch);
            }
            catch (Exception e)
            {
                foreach (var request in batch) fail(request, e);
            }
        }
    }
}
