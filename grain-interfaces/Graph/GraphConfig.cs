using System.Text.Json;
using System.Text.Json.Serialization;
using DataBuild.Runtime.EventLog;

namespace DataBuild.GrainInterfaces.Graph;

/// <summary>One job of a graph (databuild.json).</summary>
public sealed record JobConfig
{
    [JsonPropertyName("label")] public string Label { get; init; } = "";
    [JsonPropertyName("entrypoint")] public string Entrypoint { get; init; } = "";
    [JsonPropertyName("args")] public IReadOnlyList<string> Args { get; init; } = [];
    [JsonPropertyName("environment")] public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    [JsonPropertyName("partition_patterns")] public IReadOnlyList<string> PartitionPatterns { get; init; } = [];
    [JsonPropertyName("max_concurrency")] public int MaxConcurrency { get; init; } = 4;
    [JsonPropertyName("max_batch")] public int MaxBatch { get; init; } = 1;
    [JsonPropertyName("retries")] public int Retries { get; init; } = 2;
    [JsonPropertyName("timeout_seconds")] public int TimeoutSeconds { get; init; } = 3600;
}

/// <summary>Another DataBuild graph that produces some partitions.</summary>
public sealed record UpstreamConfig
{
    [JsonPropertyName("name")] public string Name { get; init; } = "";
    [JsonPropertyName("url")] public string Url { get; init; } = "";
    [JsonPropertyName("partition_patterns")] public IReadOnlyList<string> PartitionPatterns { get; init; } = [];
}

public sealed record GraphConfig
{
    [JsonPropertyName("graph_label")] public string GraphLabel { get; init; } = "";
    [JsonPropertyName("jobs")] public IReadOnlyList<JobConfig> Jobs { get; init; } = [];
    [JsonPropertyName("external_patterns")] public IReadOnlyList<string> ExternalPatterns { get; init; } = [];
    [JsonPropertyName("upstreams")] public IReadOnlyList<UpstreamConfig> Upstreams { get; init; } = [];

    /// <summary>The folder relative entrypoints resolve against (the config file's folder).</summary>
    [JsonIgnore] public string BaseDirectory { get; init; } = System.Environment.CurrentDirectory;

    private static readonly JsonSerializerOptions Json = new()
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Loads and validates a graph; every problem found is reported at once.</summary>
    public static GraphConfig Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new GraphConfigException(full, [$"file not found"]);
        GraphConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<GraphConfig>(File.ReadAllText(full), Json);
        }
        catch (JsonException e)
        {
            throw new GraphConfigException(full, [e.Message]);
        }
        if (config is null) throw new GraphConfigException(full, ["the file holds null, not a graph"]);
        config = config with { BaseDirectory = Path.GetDirectoryName(full)! };
        var problems = config.Validate(checkEntrypoints: true);
        if (problems.Count > 0) throw new GraphConfigException(full, problems);
        return config;
    }

    public IReadOnlyList<string> Validate(bool checkEntrypoints)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(GraphLabel)) problems.Add("graph_label is required");
        void CheckPattern(string where, string pattern)
        {
            try { _ = new PartitionPattern(pattern); }
            catch (ArgumentException e) { problems.Add($"{where}: {e.Message}"); }
        }
        var labels = new HashSet<string>();
        var claimed = new Dictionary<string, string>();
        foreach (var (job, i) in Jobs.Select((j, i) => (j, i)))
        {
            var where = string.IsNullOrEmpty(job.Label) ? $"jobs[{i}]" : $"job '{job.Label}'";
            if (string.IsNullOrWhiteSpace(job.Label)) problems.Add($"{where}: label is required");
            else if (!labels.Add(job.Label)) problems.Add($"{where}: label is used by another job");
            if (string.IsNullOrWhiteSpace(job.Entrypoint)) problems.Add($"{where}: entrypoint is required");
            else if (checkEntrypoints && !File.Exists(ResolveEntrypoint(job))) problems.Add($"{where}: entrypoint '{job.Entrypoint}' not found (looked for {ResolveEntrypoint(job)})");
            if (job.PartitionPatterns.Count == 0) problems.Add($"{where}: partition_patterns must list at least one pattern");
            foreach (var pattern in job.PartitionPatterns)
            {
                CheckPattern(where, pattern);
                if (claimed.TryGetValue(pattern, out var other) && other != job.Label)
                    problems.Add($"{where}: pattern '{pattern}' is also claimed by job '{other}'; exactly one job may produce a partition");
                claimed.TryAdd(pattern, job.Label);
            }
            if (job.MaxConcurrency < 1) problems.Add($"{where}: max_concurrency must be at least 1");
            if (job.MaxBatch < 1) problems.Add($"{where}: max_batch must be at least 1");
            if (job.Retries < 0) problems.Add($"{where}: retries must not be negative");
            if (job.TimeoutSeconds < 1) problems.Add($"{where}: timeout_seconds must be at least 1");
        }
        foreach (var pattern in ExternalPatterns) CheckPattern("external_patterns", pattern);
        foreach (var (upstream, i) in Upstreams.Select((u, i) => (u, i)))
        {
            var where = string.IsNullOrEmpty(upstream.Name) ? $"upstreams[{i}]" : $"upstream '{upstream.Name}'";
            if (string.IsNullOrWhiteSpace(upstream.Name)) problems.Add($"{where}: name is required");
            if (!Uri.TryCreate(upstream.Url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                problems.Add($"{where}: url '{upstream.Url}' is not an http(s) URL");
            foreach (var pattern in upstream.PartitionPatterns) CheckPattern(where, pattern);
        }
        return problems;
    }

    public string ResolveEntrypoint(JobConfig job) => Path.GetFullPath(Path.Combine(BaseDirectory, job.Entrypoint));
}

public sealed class GraphConfigException(string path, IReadOnlyList<string> problems)
    : Exception($"Graph config {path} is not valid:\n  - {string.Join("\n  - ", problems)}")
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
