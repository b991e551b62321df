using DataBuild.Runtime.EventLog;

namespace DataBuild.GrainInterfaces.Graph;

public enum OwnerKind { Job, External, Upstream }

/// <summary>What produces a partition: one job, an external source, or an upstream graph.</summary>
public sealed record PartitionOwner(OwnerKind Kind, string Name)
{
    public string KindName => Kind switch { OwnerKind.Job => "job", OwnerKind.External => "external", _ => "upstream" };
}

/// <summary>Maps refs to their owners with the graph's patterns (each must match the whole ref).</summary>
public sealed class PartitionOwners(GraphConfig graph)
{
    private readonly IReadOnlyList<(PartitionPattern Pattern, PartitionOwner Owner)> _patterns =
        graph.Jobs.SelectMany(j => j.PartitionPatterns.Select(p => (new PartitionPattern(p), new PartitionOwner(OwnerKind.Job, j.Label))))
            .Concat(graph.ExternalPatterns.Select(p => (new PartitionPattern(p), new PartitionOwner(OwnerKind.External, "external"))))
            .Concat(graph.Upstreams.SelectMany(u => u.PartitionPatterns.Select(p => (new PartitionPattern(p), new PartitionOwner(OwnerKind.Upstream, u.Name)))))
            .ToList();

    public GraphConfig Graph { get; } = graph;

    /// <summary>The owner of a ref, or a reason it has none (matched by nothing, or by two jobs).</summary>
    public (PartitionOwner? Owner, string? Problem) Resolve(string partitionRef)
    {
        var owners = _patterns.Where(p => p.Pattern.Matches(partitionRef)).Select(p => p.Owner).Distinct().ToList();
        if (owners.Count == 0)
            return (null, $"no job, external or upstream pattern of graph '{Graph.GraphLabel}' matches partition '{partitionRef}'");
        var jobs = owners.Where(o => o.Kind == OwnerKind.Job).ToList();
        if (jobs.Count > 1)
            return (null, $"partition '{partitionRef}' is matched by jobs {string.Join(" and ", jobs.Select(j => $"'{j.Name}'"))}; exactly one job may produce a partition");
        return (jobs.FirstOrDefault() ?? owners[0], null);
    }
}
