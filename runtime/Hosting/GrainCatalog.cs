using System.Collections.Concurrent;

namespace DataBuild.Runtime.Hosting;

/// <summary>This silo's activations: created on first call, dropped when defunct, collected when idle.</summary>
internal sealed class GrainCatalog(GrainRuntime runtime)
{
    private readonly ConcurrentDictionary<GrainId, Lazy<Task<GrainActivation>>> _activations = new();

    public int Count => _activations.Count;

    /// <summary>The grain's activation, activated now if need be (<paramref name="assumeNew"/>: without reading its state).</summary>
    public async Task<GrainActivation> GetOrActivateAsync(GrainId id, bool assumeNew, CancellationToken cancellationToken)
    {
        while (true)
        {
            var entry = _activations.GetOrAdd(id, key => new Lazy<Task<GrainActivation>>(() => ActivateAsync(key, assumeNew, cancellationToken)));
            GrainActivation activation;
            try
            {
                activation = await entry.Value;
            }
            catch
            {
                _activations.TryRemove(new KeyValuePair<GrainId, Lazy<Task<GrainActivation>>>(id, entry));
                throw;
            }
            if (!activation.IsDefunct) return activation;
            _activations.TryRemove(new KeyValuePair<GrainId, Lazy<Task<GrainActivation>>>(id, entry));
        }
    }

    private async Task<GrainActivation> ActivateAsync(GrainId id, bool assumeNew, CancellationToken cancellationToken)
    {
        var instance = runtime.CreateInstance(id);
        var activation = new GrainActivation(runtime, id, instance);
        await activation.ActivateAsync(assumeNew, cancellationToken);
        return activation;
    }

    /// <summary>
    /// True when a turn of the grain could start here now without waiting for another turn: it is active here and
    /// between turns, or it has no activation here at all, not even one activating (a hint: it may change at once).
    /// </summary>
    public bool IsIdleOrAbsent(GrainId id) => !_activations.TryGetValue(id, out var entry) || Activated(entry) is { IsIdle: true };

    /// <summary>True when the grain is active here and takes its row lock at every turn (after a conflict with another silo).</summary>
    public bool LocksEachTurn(GrainId id) => _activations.TryGetValue(id, out var entry) && Activated(entry) is { LockEachTurn: true };

    /// <summary>The entry's activation once it has activated; null while activating or after a failed activation.</summary>
    private static GrainActivation? Activated(Lazy<Task<GrainActivation>> entry) =>
        entry.IsValueCreated && entry.Value.IsCompletedSuccessfully ? entry.Value.Result : null;

    public void Drop(GrainActivation activation)
    {
        activation.IsDefunct = true;
        if (_activations.TryGetValue(activation.Id, out var entry) && Activated(entry) == activation)
            _activations.TryRemove(new KeyValuePair<GrainId, Lazy<Task<GrainActivation>>>(activation.Id, entry));
    }

    /// <summary>Deactivates activations unused for longer than <paramref name="idleFor"/> (all of them when null).</summary>
    public async Task<int> CollectAsync(TimeSpan? idleFor, CancellationToken cancellationToken)
    {
        var collected = 0;
        foreach (var (id, entry) in _activations)
        {
            if (Activated(entry) is not { } activation) continue;
            if (idleFor is { } idle && runtime.Clock.GetElapsedTime(activation.LastUsedTimestamp) < idle) continue;
            if (!activation.TryEnterIdle()) continue; // mid-turn: not idle
            try
            {
                if (activation.IsDefunct) continue; // another collector got here first: deactivate once
                activation.IsDefunct = true;
                _activations.TryRemove(new KeyValuePair<GrainId, Lazy<Task<GrainActivation>>>(id, entry));
                try { await activation.Instance.OnDeactivateAsync(cancellationToken); }
                catch (Exception e) { runtime.Log.LogDeactivationFailed(e, id); }
                collected++;
            }
            finally
            {
                activation.Exit();
            }
        }
        return collected;
    }
}
