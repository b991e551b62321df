namespace DataBuild.Tests.Infrastructure;

/// <summary>Waits on a condition with a deadline instead of sleeping.</summary>
public static class Eventually
{
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        var last = default(T);
        Exception? lastError = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await probe();
                if (done(last)) return last;
                lastError = null;
            }
            catch (Exception e) { lastError = e; }
            await Task.Delay(20);
        }
        throw new TimeoutException($"Timed out after {timeout} waiting for {what}; last value: {last}", lastError);
    }
}
