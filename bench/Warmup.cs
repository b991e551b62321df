using System.Diagnostics;

namespace DataBuild.Bench;

/// <summary>
/// Runs unmeasured rounds of a benchmark's own work until the JIT has tiered up the hot code, as it has in a
/// long-running silo. On two saturated cores that takes the better part of a minute, and while it lasts the
/// JIT's thread takes a sixth to a fifth of the CPU (measured with perf).
/// </summary>
internal static class Warmup
{
    /// <summary>The longest warm-up; zero for <c>--quick</c>, whose runs only keep the harness from rotting.</summary>
    public static TimeSpan Max { get; set; } = TimeSpan.FromSeconds(60);

    // Methods compiled in one round below which the JIT counts as settled (about 1,000 a round at first).
    private const int SettledCompilations = 50;

    public static async Task UntilJitSettledAsync(Func<int, Task> round)
    {
        var elapsed = Stopwatch.StartNew();
        for (var n = 0; elapsed.Elapsed < Max; n++)
        {
            var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
            await round(n);
            if (System.Runtime.JitInfo.GetCompiledMethodCount() - compiled < SettledCompilations) return;
        }
    }
}
