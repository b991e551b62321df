namespace DataBuild.Runtime.EventLog;

/// <summary>
/// A level-free wake-up: waiters take <see cref="Next"/> before they look at the data, then await it,
/// so a pulse between looking and waiting is never lost.
/// </summary>
public sealed class ChangeSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Next => Volatile.Read(ref _next).Task;

    public void Pulse()
    {
        var previous = Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        previous.TrySetResult();
    }
}
