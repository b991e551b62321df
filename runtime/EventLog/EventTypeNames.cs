using DataBuild.Protos;

namespace DataBuild.Runtime.EventLog;

/// <summary>Event type names as stored and filtered: the proto oneof field names ("want_create", "job_run_succeeded", …).</summary>
public static class EventTypeNames
{
    private static readonly Dictionary<int, string> ByCase =
        DataBuildEvent.Descriptor.Oneofs[0].Fields.ToDictionary(f => f.FieldNumber, f => f.Name);

    public static IReadOnlyCollection<string> All { get; } = ByCase.Values.Order(StringComparer.Ordinal).ToArray();

    public static string Of(DataBuildEvent e) =>
        e.EventCase == DataBuildEvent.EventOneofCase.None
            ? throw new ArgumentException("An event must carry one of the event types.", nameof(e))
            : ByCase[(int)e.EventCase];

    public static bool IsKnown(string name) => ByCase.ContainsValue(name);
}
