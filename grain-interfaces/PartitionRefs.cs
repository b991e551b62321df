namespace DataBuild.GrainInterfaces;

public static class PartitionRefs
{
    public const int MaxLength = 1024;

    /// <summary>Why a ref is not acceptable, or null when it is.</summary>
    public static string? Problem(string? partitionRef)
    {
        if (string.IsNullOrEmpty(partitionRef)) return "a partition ref must not be empty";
        if (partitionRef.Length > MaxLength) return $"partition ref is {partitionRef.Length} characters long; the limit is {MaxLength}";
        for (var i = 0; i < partitionRef.Length; i++)
        {
            var c = partitionRef[i];
            if (char.IsWhiteSpace(c)) return $"partition ref '{Shorten(partitionRef)}' holds whitespace at position {i}";
            if (char.IsControl(c)) return $"partition ref '{Shorten(partitionRef)}' holds control character U+{(int)c:X4} at position {i}";
        }
        return null;
    }

    private static string Shorten(string s) =>
        new string(s.Take(80).Select(c => char.IsControl(c) ? '?' : c).ToArray()) + (s.Length > 80 ? "…" : "");
}
