using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace DataBuild.Testing;

/// <summary>
/// A throw-away PostgreSQL server: initdb in a temp folder, a free loopback port. The tests share one per run
/// with fsync off (<see cref="Instance"/>); the benchmarks start their own with fsync on, as in production.
/// Set DATABUILD_TEST_PG to a connection string (a role allowed to create databases) to use an existing server.
/// Shared by tests/ and bench/ (linked into both).
/// </summary>
internal sealed class PostgresServer
{
    private static readonly Lazy<Task<PostgresServer>> Shared = new(() => StartAsync(durable: false));
    private readonly string? _dataDir;
    private readonly string? _binDir;

    private PostgresServer(string adminConnectionString, string? dataDir, string? binDir)
    {
        AdminConnectionString = adminConnectionString;
        _dataDir = dataDir;
        _binDir = binDir;
    }

    public string AdminConnectionString { get; }
    public string? BinDir => _binDir;

    public static Task<PostgresServer> Instance => Shared.Value;

    /// <summary>A new, empty database; its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "t")
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(60, prefix.Length + 33)].ToLowerInvariant();
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Starts a new server; <paramref name="durable"/> keeps fsync and synchronous commit on.</summary>
    public static async Task<PostgresServer> StartAsync(bool durable)
    {
        var existing = Environment.GetEnvironmentVariable("DATABUILD_TEST_PG");
        if (!string.IsNullOrWhiteSpace(existing)) return new PostgresServer(existing, null, FindBinDir(required: false));

        var bin = FindBinDir(required: true)!;
        var asRoot = Environment.UserName == "root";
        await SweepAbandonedAsync(bin, asRoot);
        var dir = Directory.CreateTempSubdirectory(FolderPrefix).FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, OwnerFile), OwnerStamp(Environment.ProcessId));
        var data = Path.Combine(dir, "data");
        if (asRoot) await RunAsync("chown", ["-R", "postgres:postgres", dir]);
        var port = FreePort();

        await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], asRoot);
        var options = $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB" +
                      (durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off") +
                      // For profiling, e.g. "-c shared_preload_libraries=pg_stat_statements".
                      (Environment.GetEnvironmentVariable("DATABUILD_PG_OPTIONS") is { Length: > 0 } extra ? " " + extra : "");
        await RunAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-o", options, "-l", Path.Combine(dir, "server.log"), "-w", "-t", "60", "start"], asRoot);

        var server = new PostgresServer($"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=true", dir, bin);
        server._stop = () => server.Stop(asRoot, data);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.StopNow();
        return server;
    }

    private Action? _stop;

    /// <summary>Stops the server and deletes its folder (also done at process exit).</summary>
    public void StopNow() => Interlocked.Exchange(ref _stop, null)?.Invoke();

    public string Host => new NpgsqlConnectionStringBuilder(AdminConnectionString).Host!;
    public int Port => new NpgsqlConnectionStringBuilder(AdminConnectionString).Port;

    private void Stop(bool asRoot, string data)
    {
        try
        {
            StopServerAsync(_binDir!, data, asRoot).GetAwaiter().GetResult();
            Directory.Delete(_dataDir!, recursive: true);
        }
        catch (Exception) { /* the process is ending; a leftover temp folder is harmless */ }
    }

    private const string FolderPrefix = "databuild-pg-";
    private const string OwnerFile = "owner";

    /// <summary>The process id and its start time in clock ticks after boot (/proc/PID/stat field 22), so a reused id does not match.</summary>
    private static string OwnerStamp(int pid)
    {
        var stat = File.Exists($"/proc/{pid}/stat") ? File.ReadAllText($"/proc/{pid}/stat") : null;
        // The fields after the command name, which is in parentheses and may hold spaces: state is field 3, start time 22.
        var startTicks = stat is null ? "" : stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
        return $"{pid} {startTicks}";
    }

    /// <summary>
    /// Stops and deletes the servers of test and benchmark processes that ended without their exit handler (the test
    /// runner ends its host without waiting for it; a killed benchmark leaves a 1.3 GB scale store behind). Leftovers
    /// had filled 63 GB of /tmp on a developer machine. A folder is abandoned when the process that wrote its owner
    /// stamp is gone, or, without a stamp, when it is over an hour old and its server is not running.
    /// </summary>
    private static async Task SweepAbandonedAsync(string bin, bool asRoot)
    {
        // Where a process's start time cannot be read (no /proc), an owner's liveness is unknown: sweep nothing.
        if (!File.Exists("/proc/self/stat")) return;
        foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), FolderPrefix + "*"))
        {
            try
            {
                var owner = Path.Combine(dir, OwnerFile);
                var data = Path.Combine(dir, "data");
                var serverMayRun = File.Exists(Path.Combine(data, "postmaster.pid"));
                var abandoned = File.Exists(owner)
                    ? !OwnerAlive(File.ReadAllText(owner))
                    : Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow.AddHours(-1) && !serverMayRun;
                if (!abandoned) continue;
                if (serverMayRun)
                {
                    try { await StopServerAsync(bin, data, asRoot); }
                    catch (InvalidOperationException) { /* its server had already stopped, leaving a stale pid file */ }
                }
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception) { /* another process is sweeping or still using it: leave it */ }
        }
    }

    private static Task StopServerAsync(string bin, string data, bool asRoot) =>
        RunAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"], asRoot);

    private static bool OwnerAlive(string stamp)
    {
        var pid = int.Parse(stamp.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            return OwnerStamp(pid).Trim() == stamp.Trim();
        }
        catch (IOException) { return false; } // it ended while being read
    }

    public static string? FindBinDir(bool required)
    {
        var candidates = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                .Select(d => Path.Combine(d, "bin"))
            : [];
        foreach (var candidate in candidates.Append("/usr/local/pgsql/bin"))
        {
            if (File.Exists(Path.Combine(candidate, "initdb"))) return candidate;
        }
        foreach (var path in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            if (path.Length > 0 && File.Exists(Path.Combine(path, "initdb"))) return path;
        }
        return required
            ? throw new InvalidOperationException("PostgreSQL server binaries (initdb, pg_ctl) were not found. Install postgresql (Debian: apt-get install postgresql) or set DATABUILD_TEST_PG.")
            : null;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task RunAsync(string file, string[] args, bool asPostgres = false)
    {
        var start = new ProcessStartInfo(asPostgres ? "runuser" : file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/tmp",
        };
        if (asPostgres) { start.ArgumentList.Add("-u"); start.ArgumentList.Add("postgres"); start.ArgumentList.Add("--"); start.ArgumentList.Add(file); }
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {process.ExitCode}:\n{await stdout}\n{await stderr}");
    }
}
