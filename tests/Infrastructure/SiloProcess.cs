using System.Diagnostics;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

using DataBuild.Testing;

namespace DataBuild.Tests.Infrastructure;

/// <summary>A real silo as a separate process on loopback, as users run it (<c>DataBuild.Silo --store … --urls …</c>).</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private SiloProcess(Process process, string url)
    {
        _process = process;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(90) };
    }

    public string Url { get; }
    public HttpClient Http { get; }
    public string Output { get { lock (_output) return _output.ToString(); } }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public static SiloProcess Start(string store, string? workingDirectory = null, params string[] extraArgs)
    {
        var url = $"http://127.0.0.1:{PostgresServer.FreePort()}";
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DataBuild.Silo.dll"));
        foreach (var a in new[] { "--store", store, "--urls", url }.Concat(extraArgs)) start.ArgumentList.Add(a);
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["Logging__Console__FormatterName"] = "simple";
        var process = Process.Start(start)!;
        var silo = new SiloProcess(process, url);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (silo._output) silo._output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (silo._output) silo._output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    /// <inheritdoc cref="WantRequests.CreateWantAsync"/>
    public Task<string> CreateWantAsync(params string[] partitions) => Http.CreateWantAsync(partitions);

    /// <inheritdoc cref="WantRequests.PostWantAsync"/>
    public Task<string> PostWantAsync(object body) => Http.PostWantAsync(body);

    /// <inheritdoc cref="WantRequests.UntilWantAsync"/>
    public Task<JsonElement> UntilWantAsync(string wantId, Func<JsonElement, bool> done, TimeSpan timeout, string what) =>
        Http.UntilWantAsync(wantId, done, timeout, what);

    /// <summary>Waits until an event-log long poll on this silo is waiting for an event (its /metrics say so).</summary>
    public Task WaitForWaitingLongPollAsync() =>
        Eventually.UntilAsync(() => Http.GetStringAsync("/metrics"),
            text => text.Contains("\ndatabuild_events_long_polls_waiting 1\n", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "the long poll to wait");

    /// <summary>Waits until /readyz answers 200, or fails with the silo's output.</summary>
    public async Task WaitReadyAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        using var probe = new HttpClient { BaseAddress = Http.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"Silo exited with {_process.ExitCode}:\n{Output}");
            try
            {
                using var response = await probe.GetAsync("/readyz");
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException($"Silo at {Url} not ready in time:\n{Output}");
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Asks the process to stop, as Kubernetes and systemd do (SIGTERM): a graceful stop.</summary>
    public void Terminate()
    {
        if (!_process.HasExited && !ProcessSignals.Terminate(_process))
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Kills the process outright (a crash, as far as the cluster can tell).</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try { await WaitForExitAsync(TimeSpan.FromSeconds(10)); } catch (OperationCanceledException) { }
        Http.Dispose();
        _process.Dispose();
    }
}
