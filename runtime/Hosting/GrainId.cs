namespace DataBuild.Runtime.Hosting;

/// <summary>A grain's identity: its type name (e.g. "want") and its key (e.g. the want id).</summary>
public readonly record struct GrainId(string Type, string Key)
{
    public override string ToString() => $"{Type}/{Key}";
}
