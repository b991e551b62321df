using DataBuild.GrainInterfaces;
using DataBuild.Runtime.Hosting;

namespace DataBuild.Grains;

public static class GrainRegistration
{
    /// <summary>The grain types a DataBuild silo hosts.</summary>
    public static GrainTypeRegistry DataBuildGrains(this GrainTypeRegistry registry) => registry
        .Add<IWantGrain, WantGrain>()
        .Add<IPartitionGrain, PartitionGrain>()
        .Add<Jobs.IJobRunTarget, PartitionGrain>();
}
