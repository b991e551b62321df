using System.Collections.Immutable;

namespace DataBuild.Runtime.Hosting;

/// <summary>The grains whose turns are waiting on the current call, innermost last; flows with async calls.</summary>
internal static class CallChain
{
    private static readonly AsyncLocal<ImmutableList<GrainId>?> Chain = new();

    public static ImmutableList<GrainId> Current
    {
        get => Chain.Value ?? [];
        set => Chain.Value = value;
    }
}
