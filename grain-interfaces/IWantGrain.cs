using DataBuild.Runtime.Hosting;

namespace DataBuild.GrainInterfaces;

/// <summary>A want, keyed by its UUID.</summary>
public interface IWantGrain : IGrainWithStringKey
{
    /// <summary>Creates the want (a repeated call with the same id returns it unchanged).</summary>
    Task<WantView> Create(CreateWant command);

    /// <summary>Cancels the want; <see cref="WantConflictException"/> if it has already ended.</summary>
    Task<WantView> Cancel(CancelWant command);

    /// <summary>The want, or null if no want has this id.</summary>
    Task<WantView?> Get();
}

/// <summary>A partition, keyed by its ref: the canonical state that every want for it shares.</summary>
public interface IPartitionGrain : IGrainWithStringKey
{
    /// <summary>An external partition is now available; every want waiting on it is told in this turn.</summary>
    Task<PartitionView> MarkAvailable(string sourceType, string sourceName);

    Task<PartitionView> Get();
}
