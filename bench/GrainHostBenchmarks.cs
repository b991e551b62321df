using System.Diagnostics;
using System.Globalization;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Bench;

/// <summary>
/// Persisted grain turns/s on PostgreSQL (fsync on) against pgbench single-row updates on the same server in
/// the same run, with the same number of concurrent clients; and in-memory grain calls/s.
/// </summary>
internal static class GrainHostBenchmarks
{
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(PostgresServer server, int clients, TimeSpan duration)
    {
        var results = new List<BenchResult>();
        var pgbenchTps = await PgbenchUpdatesAsync(server, clients, duration);

        var connectionString = await server.CreateDatabaseAsync("bench");
        await using var store = DataStore.Open(StoreLocation.Parse($"postgres:{connectionString}"));
        await store.MigrateAsync();
        var types = new GrainTypeRegistry().Add<IBenchCounterGrain, BenchCounterGrain>().Add<IEchoGrain, EchoGrain>();
        await using var silo = new SiloHost(store, types, new ServiceCollection().BuildServiceProvider());
        await silo.StartAsync();

        // Each client increments its own grains, so turns contend on the database, not on one grain's lock.
        var turns = await CountAsync(clients, duration, async (client, i) =>
            await silo.GrainFactory.GetGrain<IBenchCounterGrain>($"c{client}-{i % 64}").Increment());
        var turnsPerSecond = turns / duration.TotalSeconds;
        results.Add(new BenchResult("grain_turns_persisted_postgres", Math.Round(turnsPerSecond), "turns/s",
            Math.Round(pgbenchTps), "pgbench single-row UPDATE tps", Math.Round(turnsPerSecond / pgbenchTps, 3), null, null));

        var calls = await CountAsync(Environment.ProcessorCount * 4, duration, async (client, i) =>
            await silo.GrainFactory.GetGrain<IEchoGrain>($"e{client}-{i % 64}").Echo(i));
        results.Add(new BenchResult("grain_calls_in_memory", Math.Round(calls / duration.TotalSeconds), "calls/s", null, null, null, null, null));
        return results;
    }

    private static async Task<long> CountAsync(int clients, TimeSpan duration, Func<int, int, Task> call)
    {
        // Warm up (activations, connection pool, JIT), then measure.
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () => { for (var i = 0; i < 64; i++) await call(c, i); })));
        long count = 0;
        var stopwatch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var i = 0;
            while (stopwatch.Elapsed < duration)
            {
                await call(c, i++);
                Interlocked.Increment(ref count);
            }
        })));
        return count;
    }

    /// <summary>pgbench: one UPDATE of a random pgbench_accounts row per transaction, prepared, <paramref name="clients"/> clients.</summary>
    public static async Task<double> PgbenchUpdatesAsync(PostgresServer server, int clients, TimeSpan duration)
    {
        var database = new Npgsql.NpgsqlConnectionStringBuilder(await server.CreateDatabaseAsync("pgbench")).Database!;
        var pgbench = Path.Combine(server.BinDir ?? "/usr/bin", "pgbench");
        string[] connection = ["-h", server.Host, "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres"];
        await PostgresServer.RunAsync(pgbench, [.. connection, "-i", "-q", "-s", "1", database]);
        var script = Path.GetTempFileName();
        await File.WriteAllTextAsync(script, "\\set aid random(1, 100000)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n");
        var output = await CaptureAsync(pgbench, [.. connection, "-n", "-M", "prepared", "-c", clients.ToString(CultureInfo.InvariantCulture),
            "-j", "2", "-T", Math.Max(1, (int)duration.TotalSeconds).ToString(CultureInfo.InvariantCulture), "-f", script, database]);
        File.Delete(script);
        var line = output.Split('\n').First(l => l.StartsWith("tps = ", StringComparison.Ordinal));
        return double.Parse(line["tps = ".Length..].Split(' ')[0], CultureInfo.InvariantCulture);
    }

    public static async Task<string> CaptureAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} exited {process.ExitCode}: {await stderr}");
        return await stdout;
    }
}
