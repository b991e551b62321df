using System.Diagnostics;

namespace DataBuild.Bench;

/// <summary>
/// The benchmark graph's job: "dep" waits on ext/n and records when it started, "hop" is a chain through missing
/// dependencies. By default a small C program (compiled with the machine's <c>cc</c>, statically linked where its C
/// library allows: since 2026-11-22's thirteenth session), so that dispatch latency ends when the job's process has
/// started rather than when an interpreter or the dynamic loader has started up inside it: bash takes about
/// 1 ms more than a C program between exec and its first instruction on this VM, and a real job's interpreter is
/// the job's cost, not the orchestrator's. <c>--job bash</c> runs the same logic as a bash script (the figures
/// reported before 2026-11-22's ninth session); without a C compiler the harness falls back to it.
/// </summary>
internal static class BenchJob
{
    public static string Kind { get; set; } = "native";

    private const string BashScript = """
        #!/bin/bash
        started=$EPOCHREALTIME
        case "$DATABUILD_JOB_LABEL" in
          dep) n="${1#d/}"
               if [ -f "$DATA/ext_$n" ]; then echo "$started" > "$DATA/start_$n"; exit 0; fi
               echo "__DATABUILD_ERROR__::{\"missing_deps\":[\"ext/$n\"]}"; exit 3 ;;
          hop) n="${1#h/}"
               if [ "$n" -gt 0 ] && [ ! -f "$DATA/h_$((n - 1))" ]; then echo "__DATABUILD_ERROR__::{\"missing_deps\":[\"h/$((n - 1))\"]}"; exit 3; fi
               : > "$DATA/h_$n" ;;
        esac
        """;

    private const string CProgram = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <time.h>
        #include <unistd.h>

        int main(int argc, char **argv) {
            struct timespec started;
            clock_gettime(CLOCK_REALTIME, &started);
            const char *label = getenv("DATABUILD_JOB_LABEL"), *data = getenv("DATA");
            char path[4096];
            if (argc < 2 || !label || !data) return 2;
            if (strcmp(label, "dep") == 0) {
                const char *n = argv[1] + 2; /* "d/<n>" */
                snprintf(path, sizeof path, "%s/ext_%s", data, n);
                if (access(path, F_OK) == 0) {
                    snprintf(path, sizeof path, "%s/start_%s", data, n);
                    FILE *f = fopen(path, "w");
                    if (!f) return 1;
                    fprintf(f, "%lld.%06ld\n", (long long)started.tv_sec, started.tv_nsec / 1000);
                    return fclose(f) == 0 ? 0 : 1;
                }
                printf("__DATABUILD_ERROR__::{\"missing_deps\":[\"ext/%s\"]}\n", n);
                return 3;
            }
            if (strcmp(label, "hop") == 0) {
                long n = strtol(argv[1] + 2, NULL, 10); /* "h/<n>" */
                snprintf(path, sizeof path, "%s/h_%ld", data, n - 1);
                if (n > 0 && access(path, F_OK) != 0) {
                    printf("__DATABUILD_ERROR__::{\"missing_deps\":[\"h/%ld\"]}\n", n - 1);
                    return 3;
                }
                snprintf(path, sizeof path, "%s/h_%ld", data, n);
                FILE *f = fopen(path, "w");
                return f && fclose(f) == 0 ? 0 : 1;
            }
            return 2;
        }
        """;

    /// <summary>Writes the job into <paramref name="folder"/> and returns its entrypoint (relative to the folder).</summary>
    public static string WriteInto(string folder)
    {
        if (Kind == "native")
        {
            File.WriteAllText(Path.Combine(folder, "job.c"), CProgram);
            if (Compile(folder) is { } linking)
            {
                if (_linking is null) Console.WriteLine($"  (the benchmark job is a C program, {linking} linked)");
                _linking = linking;
                return "job";
            }
            Console.WriteLine("  (no C compiler: the benchmark job is the bash script; see --job)");
            Kind = "bash";
        }
        File.WriteAllText(Path.Combine(folder, "job.sh"), BashScript);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path.Combine(folder, "job.sh"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return "job.sh";
    }

    /// <summary>
    /// Compiles the job, statically linked where the machine's C library allows it: a static program skips the dynamic
    /// loader at every exec (0.2-0.3 ms of CPU per process on this VM), which is the job's start-up, not the orchestrator's.
    /// Returns how it was linked ("statically" or "dynamically"), or null when the machine has no C compiler.
    /// </summary>
    private static string? Compile(string folder)
    {
        if (Cc(folder, "-static") is null) return "statically";
        if (Cc(folder) is not { } errors) return "dynamically";
        if (errors.Length == 0) return null; // no cc on this machine
        throw new InvalidOperationException($"cc failed on the benchmark job: {errors}");
    }

    // How the first compiled job was linked (null until then): the harness says so once.
    private static string? _linking;

    /// <summary>Runs cc on job.c: null when it compiled, its output when it failed, "" when there is no cc.</summary>
    private static string? Cc(string folder, params string[] flags)
    {
        var start = new ProcessStartInfo("cc") { WorkingDirectory = folder, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in flags.Concat(["-O2", "-o", "job", "job.c"])) start.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? null : $"{output.Result}{errors}";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "";
        }
    }
}
