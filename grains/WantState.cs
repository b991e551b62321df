using DataBuild.GrainInterfaces;

namespace DataBuild.Grains;

public sealed class WantState
{
    public string? WantId { get; set; }
    public List<string> Partitions { get; set; } = [];
    public long DataTimestamp { get; set; }
    public long TtlSeconds { get; set; }
    public long? SlaSeconds { get; set; }
    public string SourceType { get; set; } = "";
    public string SourceName { get; set; } = "";
    public string? Comment { get; set; }
    public string? ParentWantId { get; set; }
    public string RootWantId { get; set; } = "";
    public string Status { get; set; } = "";
    public bool SlaViolated { get; set; }
    public long? SlaViolatedAt { get; set; }
    public long CreatedAt { get; set; }
    public long? SatisfiedAt { get; set; }
    public long? FinishedAt { get; set; }
    public string? Reason { get; set; }
    public HashSet<string> Available { get; set; } = [];
    /// <summary>When the latest partition word (building, waiting upstream) applied was sent, epoch ms: older words are stale.</summary>
    public long LastWordSentAt { get; set; }

    public long TtlDeadline => DataTimestamp + TtlSeconds * 1000;
    public long? SlaDeadline => SlaSeconds is { } s ? DataTimestamp + s * 1000 : null;

    /// <summary>The want's "waiting" message to its partitions: built the same way by its creation and when it withdraws it.</summary>
    public string WaitingMessage() => GrainMessages.WantWaitingName(WantId!, new Waiter(DataTimestamp, TtlSeconds, SlaSeconds, RootWantId));

    public WantView View() => new(WantId!, Partitions, DataTimestamp, TtlSeconds, SlaSeconds, TtlDeadline, SlaDeadline, SourceType, SourceName,
        Comment, ParentWantId, RootWantId, Status, SlaViolated, SlaViolatedAt, CreatedAt, SatisfiedAt, FinishedAt, Reason);
}

public sealed class PartitionState
{
    public string? Ref { get; set; }
    public string Status { get; set; } = "missing";
    public long UpdatedAt { get; set; }
    public long? AvailableAt { get; set; }
    public string? JobRunId { get; set; }
    public string? Reason { get; set; }
    /// <summary>Wants waiting on this partition, with what dispatch order and child wants need of them.</summary>
    public Dictionary<string, Waiter> Waiters { get; set; } = [];
    /// <summary>Failed attempts of the current build (reset when it succeeds or a new want restarts a failed one).</summary>
    public int Failures { get; set; }
    /// <summary>Upstream partitions the last run reported missing and that are not available yet.</summary>
    public HashSet<string> Missing { get; set; } = [];
    /// <summary>Downstream partitions waiting on this one as a missing dependency.</summary>
    public HashSet<string> Dependents { get; set; } = [];
    /// <summary>When this partition last sent its wants a word, epoch ms: the next is sent no earlier.</summary>
    public long LastWordAt { get; set; }
}

public sealed record Waiter(long DataTimestamp, long TtlSeconds, long? SlaSeconds, string RootWantId)
{
    public long? SlaDeadline => SlaSeconds is { } s ? DataTimestamp + s * 1000 : null;
}
