using System.Text.Json.Serialization;

namespace DataBuild.Bench;

/// <summary>One line of bench/results/latest.json: a value, the baseline measured in the same run, and the goal.</summary>
public sealed record BenchResult(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("value")] double Value,
    [property: JsonPropertyName("unit")] string Unit,
    [property: JsonPropertyName("baseline")] double? Baseline,
    [property: JsonPropertyName("baseline_name")] string? BaselineName,
    [property: JsonPropertyName("ratio")] double? Ratio,
    [property: JsonPropertyName("goal")] string? Goal,
    [property: JsonPropertyName("pass")] bool? Pass);
