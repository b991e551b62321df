namespace DataBuild.GrainInterfaces;

/// <summary>Create a want. Instants are epoch milliseconds; a null SLA means none.</summary>
public sealed record CreateWant(
    string WantId,
    IReadOnlyList<string> Partitions,
    long DataTimestamp,
    long TtlSeconds,
    long? SlaSeconds,
    string SourceType,
    string SourceName,
    string? Comment,
    string? ParentWantId,
    string? RootWantId,
    string? IdempotencyKey = null,
    string? RequestHash = null);

public sealed record CancelWant(string SourceType, string SourceName, string? Comment);

/// <summary>A want as its grain last committed it.</summary>
public sealed record WantView(
    string WantId,
    IReadOnlyList<string> Partitions,
    long DataTimestamp,
    long TtlSeconds,
    long? SlaSeconds,
    long TtlDeadline,
    long? SlaDeadline,
    string SourceType,
    string SourceName,
    string? Comment,
    string? ParentWantId,
    string RootWantId,
    string Status,
    bool SlaViolated,
    long? SlaViolatedAt,
    long CreatedAt,
    long? SatisfiedAt,
    long? FinishedAt,
    string? Reason);

public sealed record PartitionView(string Ref, string Status, long UpdatedAt, long? AvailableAt, string? JobRunId, string? Reason, int WaitingWants);

/// <summary>The want is in a state that does not allow the request (cancelling a terminal want).</summary>
public sealed class WantConflictException(string message) : Exception(message);

/// <summary>The Idempotency-Key was taken by another request first; the caller reads that request's want.</summary>
public sealed class IdempotencyKeyTakenException(string key) : Exception($"Idempotency-Key '{key}' is already used.");
