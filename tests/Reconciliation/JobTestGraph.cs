namespace DataBuild.Tests.Reconciliation;

/// <summary>
/// A graph of real job processes for reconciliation tests. One script serves every job (by its label); it
/// records each run per partition under data/runs, and a built partition as a file under data/parts.
/// </summary>
public static class JobTestGraph
{
    public static string Write(string folder, int lease = 30)
    {
        var data = Path.Combine(folder, "data");
        Directory.CreateDirectory(Path.Combine(data, "runs"));
        Directory.CreateDirectory(Path.Combine(data, "parts"));
        var script = Path.Combine(folder, "job.sh");
        File.WriteAllText(script, """
            #!/usr/bin/env bash
            set -u
            enc() { printf '%s' "$1" | tr '/' '_'; }
            have() { [ -f "$DATA/parts/$(enc "$1")" ]; }
            built() { touch "$DATA/parts/$(enc "$1")"; echo "built $1"; }
            missing() { local j="" s=""; for r in "$@"; do j="$j$s\"$r\""; s=","; done; echo "__DATABUILD_ERROR__::{\"missing_deps\":[$j]}"; exit 3; }
            for ref in "$@"; do echo "$DATABUILD_JOB_RUN_ID" >> "$DATA/runs/$(enc "$ref")"; done
            case "$DATABUILD_JOB_LABEL" in
              leaf) for ref in "$@"; do built "$ref"; done ;;
              chain)  # chain/L/K needs chain/(L-1)/K; chain/1/K needs nothing
                ref="$1"; rest="${ref#chain/}"; level="${rest%%/*}"; key="${rest#*/}"
                if [ "$level" -gt 1 ]; then dep="chain/$((level - 1))/$key"; have "$dep" || missing "$dep"; fi
                built "$ref" ;;
              fanin)  # fanin/K needs leaf/K-0 .. leaf/K-49
                ref="$1"; key="${ref#fanin/}"; need=()
                for i in $(seq 0 49); do have "leaf/$key-$i" || need+=("leaf/$key-$i"); done
                [ ${#need[@]} -eq 0 ] || missing "${need[@]}"
                built "$ref" ;;
              flaky)  # flaky/N/K fails its first N runs
                ref="$1"; rest="${ref#flaky/}"; n="${rest%%/*}"
                runs=$(wc -l < "$DATA/runs/$(enc "$ref")")
                if [ "$runs" -le "$n" ]; then echo "flaky: failing run $runs of $n" >&2; exit 1; fi
                built "$ref" ;;
              broken) echo "broken: this job always fails" >&2; exit 2 ;;
              needsbroken) dep="broken/${1#nb/}"; have "$dep" || missing "$dep"; built "$1" ;;
              slow|sleepy|longrun) sleep "${SLOW_SECONDS:-3}"; for ref in "$@"; do built "$ref"; done ;;
              *) echo "unknown job $DATABUILD_JOB_LABEL" >&2; exit 9 ;;
            esac
            """.Replace("\r", ""));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var path = Path.Combine(folder, "databuild.json");
        File.WriteAllText(path, $$"""
            { "graph_label": "reconcile",
              "jobs": [
                { "label": "leaf",   "entrypoint": "job.sh", "partition_patterns": ["leaf/.*"],   "max_concurrency": 4, "max_batch": 10, "retries": 0, "environment": { "DATA": "{{data}}" } },
                { "label": "chain",  "entrypoint": "job.sh", "partition_patterns": ["chain/.*"],  "max_concurrency": 4, "retries": 0, "environment": { "DATA": "{{data}}" } },
                { "label": "fanin",  "entrypoint": "job.sh", "partition_patterns": ["fanin/.*"],  "max_concurrency": 2, "retries": 0, "environment": { "DATA": "{{data}}" } },
                { "label": "flaky",  "entrypoint": "job.sh", "partition_patterns": ["flaky/.*"],  "max_concurrency": 2, "retries": 2, "environment": { "DATA": "{{data}}" } },
                { "label": "broken", "entrypoint": "job.sh", "partition_patterns": ["broken/.*"], "max_concurrency": 2, "retries": 1, "environment": { "DATA": "{{data}}" } },
                { "label": "needsbroken", "entrypoint": "job.sh", "partition_patterns": ["nb/.*"], "max_concurrency": 2, "retries": 0, "environment": { "DATA": "{{data}}" } },
                { "label": "slow",   "entrypoint": "job.sh", "partition_patterns": ["slow/.*"],   "max_concurrency": 1, "retries": 0, "timeout_seconds": 2, "environment": { "DATA": "{{data}}", "SLOW_SECONDS": "1" } },
                { "label": "longrun", "entrypoint": "job.sh", "partition_patterns": ["longrun/.*"], "max_concurrency": 1, "retries": 0, "timeout_seconds": 60, "environment": { "DATA": "{{data}}", "SLOW_SECONDS": "4" } },
                { "label": "sleepy", "entrypoint": "job.sh", "partition_patterns": ["sleepy/.*"], "max_concurrency": 1, "retries": 0, "timeout_seconds": 1, "environment": { "DATA": "{{data}}", "SLOW_SECONDS": "30" }, "args": [] }
              ],
              "external_patterns": ["ext/.*"] }
            """);
        return path;
    }

    /// <summary>How many times a partition's job ran.</summary>
    public static int Runs(string folder, string partition)
    {
        var file = Path.Combine(folder, "data", "runs", partition.Replace('/', '_'));
        return File.Exists(file) ? File.ReadAllLines(file).Length : 0;
    }
}
